/*
 * bench/caf/caf_peer.cpp: the esr benchmark's C++ Actor Framework (CAF 0.17)
 * peer. One event-based stateful actor per aggregate runs the same decision
 * logic as tools/stress/workload_{counter,bank}.c and keeps its state plus its
 * own event log (type, amount, seq), each event appended before the state
 * changes. The plan file, the modes, the JSON line and the self-check are the
 * ones bench/README.md defines.
 *
 * Scheduler: `scheduler.policy` = --policy, `stealing` (CAF's default
 * work-stealing coordinator, and this program's) or `sharing` (one job queue
 * shared under a lock), with `scheduler.max-threads` = --workers (the 0.17
 * keys; "caf." prefixes came with 0.18). Neither policy wins every case (one
 * queue wakes a worker more cheaply when few actors are busy, stealing keeps
 * workers apart when many are), so bench/run tries both and keeps the faster;
 * the policy is named in the JSON line, and the program checks that the
 * scheduler it got is the one asked for. `scheduler.max-throughput` keeps its
 * default (unbounded: an actor drains its whole mailbox once scheduled). That
 * default is what favours throughput under a hot aggregate, and nothing here
 * needs fairness between actors, so an expert would leave it. No config file
 * or CAF command-line option is read, so nothing outside this program changes
 * the settings.
 *
 * The client holds the directory, a std::unordered_map from the id string
 * ("acct-K", "ctr-K") to caf::actor; an actor is spawned on first use.
 *
 * --mode ff: the client is a scoped_actor on the main thread, the T workers
 * run the aggregates. Every command goes out with anon_send (no sender, no
 * reply); then the client sends every live actor a summary request and
 * collects the replies. Timed from the first send to the last summary.
 *
 * --mode rr: the client is an event-based actor spawned `detached`, so it
 * runs on a thread of its own on top of the T workers, like esr-stress's
 * writer. It keeps up to W commands in flight and issues the next one from the
 * reply handler. The command goes out with `send` and the aggregate's handler
 * returns (seq, accepted), which CAF delivers back to the sender as an
 * ordinary message; the seq is the correlation id and indexes the send-time
 * table, so a reply costs O(1). request(...).then(...) would be the textbook
 * form, but CAF 0.17 keeps every pending `then` continuation in a flat map it
 * searches linearly (and allocates a behavior per request): with W = 1024 in
 * flight that lookup, not the actors, would be what is measured. The same
 * reply path serves --idle.
 */
#include <caf/all.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/scheduler/coordinator.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using cmd_atom = caf::atom_constant<caf::atom("cmd")>;     // fire and forget
using req_atom = caf::atom_constant<caf::atom("req")>;     // replies (seq, accepted)
using sum_atom = caf::atom_constant<caf::atom("sum")>;     // replies summary
using start_atom = caf::atom_constant<caf::atom("start")>; // main -> rr client
using done_atom = caf::atom_constant<caf::atom("done")>;   // rr client -> main

constexpr uint64_t seq_setup = std::numeric_limits<uint64_t>::max();
// rr times one request in this many, as esr-stress and the mutex program do
// in a closed loop (tools/stress/histogram.h, HIST_TIME_EVERY): two clock
// reads a request are the client's cost, not the framework's.
constexpr uint64_t time_every = 16;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count());
}

// -- the workloads (tools/stress/workload_*.c) -------------------------------

// decide() returns the event type, or 0 to reject.
struct counter {
  static constexpr const char* name = "counter";
  static constexpr const char* prefix = "ctr";
  static constexpr uint32_t incremented = 1;
  static constexpr bool has_opening = false;
  static constexpr uint32_t opened = 0;
  static constexpr int64_t opening = 0;
  static uint32_t decide(int64_t, uint32_t, int64_t) {
    return incremented;
  }
  static void fold(int64_t& value, uint32_t type, int64_t amount) {
    if (type == incremented)
      value += amount;
  }
  static int64_t effect(uint32_t, int64_t amount) {
    return amount;
  }
};

struct bank {
  static constexpr const char* name = "bank";
  static constexpr const char* prefix = "acct";
  static constexpr uint32_t opened = 1, deposited = 2, withdrawn = 3; // events
  static constexpr uint32_t deposit = 0;                              // kind 0; else withdraw
  static constexpr bool has_opening = true;
  static constexpr int64_t opening = 1000;
  static uint32_t decide(int64_t balance, uint32_t kind, int64_t amount) {
    if (kind == deposit)
      return deposited;
    return balance < amount ? 0 : withdrawn;
  }
  static void fold(int64_t& balance, uint32_t type, int64_t amount) {
    if (type == opened)
      balance = amount;
    else if (type == deposited)
      balance += amount;
    else if (type == withdrawn)
      balance -= amount;
  }
  static int64_t effect(uint32_t kind, int64_t amount) {
    return kind == deposit ? amount : -amount;
  }
};

// -- the aggregate actor ------------------------------------------------------

struct event {
  uint32_t type;
  int64_t amount;
  uint64_t seq; // index of the command that decided it; seq_setup: opening
};

struct aggregate_state {
  int64_t value = 0;
  std::vector<event> log;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  int64_t effects = 0; // sum of the accepted commands' effects
};

// What an aggregate tells the client at the end; the replay is of its log.
struct summary {
  uint32_t index;
  int64_t value;
  uint64_t events;
  uint64_t accepted;
  uint64_t rejected;
  int64_t effects;
  int64_t replayed; // the state folded from the log alone
  int64_t lowest;   // the lowest state after any event of the log
  bool ordered;     // opening (if any) first, then seqs strictly increasing
};

} // namespace

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(summary) // local only: never serialized

namespace {

template <class W>
bool handle(aggregate_state& s, uint32_t kind, int64_t amount, uint64_t seq) {
  uint32_t type = W::decide(s.value, kind, amount);
  if (type == 0) {
    ++s.rejected;
    return false;
  }
  s.log.push_back(event{type, amount, seq});
  W::fold(s.value, type, amount);
  ++s.accepted;
  s.effects += W::effect(kind, amount);
  return true;
}

template <class W>
summary summarize(const aggregate_state& s, uint32_t index) {
  summary r{index, s.value, s.log.size(), s.accepted, s.rejected, s.effects, 0, 0, true};
  int64_t value = 0;
  bool first = true;
  uint64_t last = 0;
  size_t at = 0;
  for (const auto& e : s.log) {
    if (e.seq == seq_setup) {
      r.ordered &= W::has_opening && at == 0 && e.type == W::opened;
    } else {
      r.ordered &= !(W::has_opening && at == 0) && (first || e.seq > last);
      first = false;
      last = e.seq;
    }
    W::fold(value, e.type, e.amount);
    r.lowest = at == 0 ? value : std::min(r.lowest, value);
    ++at;
  }
  r.replayed = value;
  return r;
}

template <class W>
caf::behavior aggregate(caf::stateful_actor<aggregate_state>* self, uint32_t index) {
  if (W::has_opening) { // the opening is an event, not a command
    self->state.log.push_back(event{W::opened, W::opening, seq_setup});
    W::fold(self->state.value, W::opened, W::opening);
  }
  return {
    [=](cmd_atom, uint32_t kind, int64_t amount, uint64_t seq) {
      handle<W>(self->state, kind, amount, seq);
    },
    [=](req_atom, uint32_t kind, int64_t amount, uint64_t seq) {
      return std::make_tuple(seq, handle<W>(self->state, kind, amount, seq));
    },
    [=](sum_atom) { return summarize<W>(self->state, index); },
  };
}

// -- the plan -----------------------------------------------------------------

struct command {
  uint32_t aggregate;
  uint32_t kind;
  int64_t amount;
};

struct plan {
  std::string workload;
  uint32_t aggregates = 0;
  std::vector<command> cmds;
};

[[noreturn]] void fail_usage(const std::string& what) {
  std::fprintf(stderr, "caf_peer: %s\n", what.c_str());
  std::exit(2);
}

uint64_t get_le(const unsigned char* b, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--)
    v = v << 8 | b[i];
  return v;
}

plan read_plan(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    fail_usage("cannot open plan " + path + ": " + std::strerror(errno));
  std::vector<unsigned char> buf;
  unsigned char chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0)
    buf.insert(buf.end(), chunk, chunk + got);
  bool bad_read = std::ferror(f) != 0;
  std::fclose(f);
  if (bad_read)
    fail_usage("cannot read plan " + path);
  if (buf.size() < 48)
    fail_usage("plan " + path + " is truncated (" + std::to_string(buf.size())
               + " bytes, the header alone is 48)");
  if (std::memcmp(buf.data(), "ESRPLAN1", 8) != 0)
    fail_usage("plan " + path + " has a bad magic (not ESRPLAN1)");
  plan p;
  p.workload.assign(reinterpret_cast<const char*>(buf.data() + 8),
                    strnlen(reinterpret_cast<const char*>(buf.data() + 8), 16));
  p.aggregates = static_cast<uint32_t>(get_le(buf.data() + 24, 4));
  uint64_t n = get_le(buf.data() + 32, 8);
  if (p.workload != counter::name && p.workload != bank::name)
    fail_usage("plan " + path + ": workload '" + p.workload
               + "' is not one this peer runs (counter, bank)");
  if (p.aggregates == 0 || get_le(buf.data() + 28, 4) != 0)
    fail_usage("plan " + path + ": bad header (aggregates 0 or reserved field set)");
  if (n == 0)
    fail_usage("plan " + path + " holds no commands");
  if (n > (buf.size() - 48) / 16 || buf.size() - 48 != n * 16)
    fail_usage("plan " + path + " is truncated or has trailing bytes (" + std::to_string(n)
               + " commands announced, " + std::to_string(buf.size()) + " bytes)");
  p.cmds.resize(n);
  for (uint64_t i = 0; i < n; i++) {
    const unsigned char* r = buf.data() + 48 + 16 * i;
    command& c = p.cmds[i];
    c.aggregate = static_cast<uint32_t>(get_le(r, 4));
    c.kind = static_cast<uint32_t>(get_le(r + 4, 4));
    c.amount = static_cast<int64_t>(get_le(r + 8, 8));
    if (c.aggregate >= p.aggregates)
      fail_usage("plan " + path + ": command " + std::to_string(i) + " names aggregate "
                 + std::to_string(c.aggregate) + " of " + std::to_string(p.aggregates));
  }
  return p;
}

// -- the command line ---------------------------------------------------------

struct options {
  std::string plan_path;
  uint64_t commands = 0;
  uint64_t workers = 0;
  std::string mode;
  std::string policy = "stealing"; // scheduler.policy
  uint64_t window = 1024;
  uint64_t idle = 0;
  bool window_given = false;
};

uint64_t parse_count(const std::string& opt, const std::string& text, uint64_t max) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0 || v == 0 || v > max)
    fail_usage(opt + " needs a whole number from 1 to " + std::to_string(max) + ", not '"
               + text + "'");
  return v;
}

options parse_args(int argc, char** argv) {
  options o;
  bool have_plan = false, have_commands = false, have_workers = false, have_mode = false,
       have_idle = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i], value;
    auto eq = arg.find('=');
    bool inline_value = arg.compare(0, 2, "--") == 0 && eq != std::string::npos;
    if (inline_value) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    auto take = [&]() {
      if (inline_value)
        return value;
      if (i + 1 >= argc)
        fail_usage(arg + " needs a value");
      return std::string(argv[++i]);
    };
    if (arg == "--plan") {
      o.plan_path = take();
      have_plan = true;
    } else if (arg == "--commands") {
      o.commands = parse_count(arg, take(), std::numeric_limits<uint64_t>::max() / 2);
      have_commands = true;
    } else if (arg == "--workers") {
      o.workers = parse_count(arg, take(), 1024);
      have_workers = true;
    } else if (arg == "--mode") {
      o.mode = take();
      if (o.mode != "ff" && o.mode != "rr")
        fail_usage("--mode must be ff or rr, not '" + o.mode + "'");
      have_mode = true;
    } else if (arg == "--policy") {
      o.policy = take();
      if (o.policy != "stealing" && o.policy != "sharing")
        fail_usage("--policy must be stealing or sharing, not '" + o.policy + "'");
    } else if (arg == "--window") {
      o.window = parse_count(arg, take(), uint64_t{1} << 24);
      o.window_given = true;
    } else if (arg == "--idle") {
      o.idle = parse_count(arg, take(), std::numeric_limits<uint32_t>::max());
      have_idle = true;
    } else {
      fail_usage("unknown argument '" + std::string(argv[i])
                 + "' (usage: --plan FILE --commands N --workers T --mode ff|rr "
                   "[--window W] [--policy stealing|sharing], or --idle N --workers T "
                   "[--policy P])");
    }
  }
  if (!have_workers)
    fail_usage("--workers T is required");
  if (have_idle) { // --policy may come too: the scheduler is part of the memory
    if (have_plan || have_commands || have_mode || o.window_given)
      fail_usage("--idle takes only --workers besides");
    return o;
  }
  if (!have_plan)
    fail_usage("--plan FILE is required (or --idle N)");
  if (!have_commands)
    fail_usage("--commands N is required");
  if (!have_mode)
    fail_usage("--mode ff|rr is required");
  if (o.window_given && o.mode != "rr")
    fail_usage("--window applies to --mode rr only");
  return o;
}

// -- memory -------------------------------------------------------------------

uint64_t status_bytes(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr)
    return 0;
  char line[256];
  size_t len = std::strlen(field);
  uint64_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
      kb = std::strtoull(line + len + 1, nullptr, 10);
      break;
    }
  std::fclose(f);
  return kb * 1024;
}

// -- the directory --------------------------------------------------------------

// The client's map from id string to actor; an aggregate is spawned on first use.
template <class W>
struct directory {
  caf::actor_system& sys;
  std::vector<std::string> ids; // "<prefix>-K", made before anything is timed
  std::unordered_map<std::string, caf::actor> actors;

  directory(caf::actor_system& s, uint32_t aggregates) : sys(s) {
    ids.reserve(aggregates);
    for (uint32_t k = 0; k < aggregates; k++)
      ids.push_back(std::string(W::prefix) + "-" + std::to_string(k));
    actors.reserve(aggregates);
  }

  const caf::actor& get(uint32_t k) {
    auto it = actors.find(ids[k]);
    if (it == actors.end())
      it = actors.emplace(ids[k], sys.spawn(aggregate<W>, k)).first;
    return it->second;
  }
};

// -- the rr client ------------------------------------------------------------

template <class W>
struct rr_run {
  const plan* p;
  directory<W>* dir;
  uint64_t n;      // commands to send
  uint64_t window; // most in flight
  uint64_t next = 0, done = 0, accepted = 0, rejected = 0;
  uint64_t start = 0, end = 0;
  std::vector<uint64_t> lat;                // timed seqs: send time, then latency
  std::vector<uint64_t> accepted_by;        // per aggregate, from the replies
  caf::response_promise finished;

  void issue(caf::event_based_actor* self) {
    uint64_t seq = next++;
    const command& c = p->cmds[seq % p->cmds.size()];
    const caf::actor& a = dir->get(c.aggregate);
    if (seq % time_every == 0)
      lat[seq / time_every] = now_ns();
    self->send(a, req_atom::value, c.kind, c.amount, seq);
  }
};

template <class W>
caf::behavior rr_client(caf::event_based_actor* self, rr_run<W>* r) {
  return {
    [=](start_atom) {
      r->finished = self->make_response_promise();
      r->start = now_ns();
      while (r->next < r->n && r->next < r->window)
        r->issue(self);
    },
    [=](uint64_t seq, bool ok) {
      if (seq % time_every == 0)
        r->lat[seq / time_every] = now_ns() - r->lat[seq / time_every];
      if (ok) {
        r->accepted++;
        r->accepted_by[r->p->cmds[seq % r->p->cmds.size()].aggregate]++;
      } else {
        r->rejected++;
      }
      if (r->next < r->n)
        r->issue(self);
      if (++r->done == r->n) {
        r->end = now_ns();
        // Deliver from a promise of our own: the main thread frees *r as soon
        // as "done" arrives, which can be while deliver() is still touching
        // the promise (seen as a double free, rarely).
        caf::response_promise finished = std::move(r->finished);
        finished.deliver(done_atom::value);
        self->quit();
      }
    },
  };
}

// -- a run --------------------------------------------------------------------

struct result {
  double seconds = 0;
  bool have_latency = false;
  uint64_t p50 = 0, p99 = 0, p999 = 0;
  uint64_t accepted = 0, rejected = 0, events = 0;
  std::string check = "ok";
};

// Nearest rank: the smallest value with at least q of all values at or below.
uint64_t percentile(const std::vector<uint64_t>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size()) - 1e-9));
  rank = std::max<size_t>(1, std::min(rank, sorted.size()));
  return sorted[rank - 1];
}

// Ask every live actor for its summary and wait for all replies.
template <class W>
std::vector<summary> collect(caf::scoped_actor& self, directory<W>& dir) {
  for (auto& kv : dir.actors)
    self->send(kv.second, sum_atom::value);
  std::vector<summary> out;
  out.reserve(dir.actors.size());
  size_t i = 0;
  self->receive_for(i, dir.actors.size())([&](const summary& s) { out.push_back(s); });
  return out;
}

template <class W>
void check(const options& o, const plan& p, const std::vector<summary>& sums,
           const std::vector<uint64_t>* replies_accepted, uint64_t replies_total, result& r) {
  std::vector<uint64_t> sent(p.aggregates, 0);
  for (uint64_t i = 0; i < o.commands; i++)
    sent[p.cmds[i % p.cmds.size()].aggregate]++;
  std::vector<bool> seen(p.aggregates, false);
  uint64_t live = 0;
  for (uint64_t s : sent)
    live += s != 0;
  char why[256] = "";
  auto id = [](uint32_t k) { return std::string(W::prefix) + "-" + std::to_string(k); };
  for (const summary& s : sums) {
    const uint64_t opening = W::has_opening ? 1 : 0;
    r.accepted += s.accepted;
    r.rejected += s.rejected;
    r.events += s.events;
    if (why[0] != '\0')
      continue;
    std::string k = id(s.index);
    if (s.index >= p.aggregates || seen[s.index])
      std::snprintf(why, sizeof why, "summary from %s twice or unknown", k.c_str());
    else if (s.accepted + s.rejected != sent[s.index])
      std::snprintf(why, sizeof why, "%s decided %" PRIu64 " of %" PRIu64 " commands",
                    k.c_str(), s.accepted + s.rejected, sent[s.index]);
    else if (s.events != s.accepted + opening)
      std::snprintf(why, sizeof why, "%s holds %" PRIu64 " events for %" PRIu64 " accepted",
                    k.c_str(), s.events, s.accepted);
    else if (!s.ordered)
      std::snprintf(why, sizeof why, "%s log out of order or opening misplaced", k.c_str());
    else if (s.lowest < 0 || s.value < 0)
      std::snprintf(why, sizeof why, "%s went below zero", k.c_str());
    else if (s.value != W::opening + s.effects)
      std::snprintf(why, sizeof why, "%s state %" PRId64 " is not opening + accepted effects %" PRId64,
                    k.c_str(), s.value, W::opening + s.effects);
    else if (s.replayed != s.value)
      std::snprintf(why, sizeof why, "%s state %" PRId64 " differs from its log's replay %" PRId64,
                    k.c_str(), s.value, s.replayed);
    else if (replies_accepted != nullptr && (*replies_accepted)[s.index] != s.accepted)
      std::snprintf(why, sizeof why, "%s was told %" PRIu64 " accepted, holds %" PRIu64,
                    k.c_str(), (*replies_accepted)[s.index], s.accepted);
    if (s.index < p.aggregates)
      seen[s.index] = true;
  }
  if (why[0] == '\0' && sums.size() != live)
    std::snprintf(why, sizeof why, "%zu actors answered, %" PRIu64 " were commanded",
                  sums.size(), live);
  if (why[0] == '\0' && r.accepted + r.rejected != o.commands)
    std::snprintf(why, sizeof why, "accepted + rejected = %" PRIu64 ", commands %" PRIu64,
                  r.accepted + r.rejected, o.commands);
  if (why[0] == '\0' && replies_accepted != nullptr && replies_total != r.accepted)
    std::snprintf(why, sizeof why, "replies said %" PRIu64 " accepted, actors hold %" PRIu64,
                  replies_total, r.accepted);
  if (why[0] != '\0')
    r.check = std::string("failed: ") + why;
}

template <class W>
result run_ff(caf::actor_system& sys, const options& o, const plan& p) {
  directory<W> dir(sys, p.aggregates);
  caf::scoped_actor self{sys};
  result r;
  const size_t n = p.cmds.size();
  uint64_t start = now_ns();
  for (uint64_t i = 0; i < o.commands; i++) {
    const command& c = p.cmds[i % n];
    caf::anon_send(dir.get(c.aggregate), cmd_atom::value, c.kind, c.amount, i);
  }
  std::vector<summary> sums = collect(self, dir);
  r.seconds = static_cast<double>(now_ns() - start) / 1e9;
  check<W>(o, p, sums, nullptr, 0, r);
  return r;
}

template <class W>
result run_rr(caf::actor_system& sys, const options& o, const plan& p) {
  directory<W> dir(sys, p.aggregates);
  rr_run<W> run;
  run.p = &p;
  run.dir = &dir;
  run.n = o.commands;
  run.window = o.window;
  run.lat.assign((o.commands + time_every - 1) / time_every, 0);
  run.accepted_by.assign(p.aggregates, 0);
  caf::scoped_actor self{sys};
  auto client = sys.spawn<caf::detached>(rr_client<W>, &run);
  result r;
  self->request(client, caf::infinite, start_atom::value)
    .receive([](done_atom) {},
             [&](caf::error& e) { r.check = "failed: client: " + sys.render(e); });
  if (r.check != "ok")
    return r;
  r.seconds = static_cast<double>(run.end - run.start) / 1e9;
  std::sort(run.lat.begin(), run.lat.end());
  r.have_latency = true;
  r.p50 = percentile(run.lat, 0.50);
  r.p99 = percentile(run.lat, 0.99);
  r.p999 = percentile(run.lat, 0.999);
  std::vector<summary> sums = collect(self, dir);
  check<W>(o, p, sums, &run.accepted_by, run.accepted, r);
  if (r.check == "ok" && run.accepted + run.rejected != o.commands)
    r.check = "failed: replies do not add up to the commands";
  return r;
}

int print_run(const options& o, const plan& p, const result& r) {
  char lat[160] = "null";
  if (r.have_latency)
    std::snprintf(lat, sizeof lat, "{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 "}",
                  r.p50, r.p99, r.p999);
  double cps = r.seconds > 0 ? static_cast<double>(o.commands) / r.seconds : 0;
  char window[24] = "null"; // ff has no window
  if (o.mode == "rr")
    std::snprintf(window, sizeof window, "%" PRIu64, o.window);
  std::printf("{\"system\":\"caf\",\"mode\":\"%s\",\"workload\":\"%s\",\"aggregates\":%" PRIu32
              ",\"workers\":%" PRIu64 ",\"policy\":\"%s\",\"window\":%s,\"commands\":%" PRIu64
              ",\"seconds\":%.6f,"
              "\"commands_per_s\":%.0f,\"latency_ns\":%s,\"peak_rss_bytes\":%" PRIu64
              ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"events\":%" PRIu64
              ",\"check\":\"%s\"}\n",
              o.mode.c_str(), p.workload.c_str(), p.aggregates, o.workers, o.policy.c_str(),
              window, o.commands, r.seconds,
              cps, lat, status_bytes("VmHWM"), r.accepted, r.rejected, r.events, r.check.c_str());
  std::fflush(stdout);
  return r.check == "ok" ? 0 : 1;
}

// --idle N: N counters, one increment each (up to 1024 in flight), all awaited.
int run_idle(caf::actor_system& sys, const options& o) {
  caf::scoped_actor self{sys};
  std::unordered_map<std::string, caf::actor> actors;
  uint64_t before = status_bytes("VmRSS");
  actors.reserve(o.idle);
  uint64_t in_flight = 0, accepted = 0;
  auto reply = [&](uint64_t, bool ok) {
    in_flight--;
    accepted += ok;
  };
  for (uint32_t k = 0; k < o.idle; k++) {
    if (in_flight == 1024)
      self->receive(reply);
    std::string id = std::string(counter::prefix) + "-" + std::to_string(k);
    auto it = actors.emplace(std::move(id), sys.spawn(aggregate<counter>, k)).first;
    self->send(it->second, req_atom::value, uint32_t{0}, int64_t{1}, uint64_t{k});
    in_flight++;
  }
  while (in_flight > 0)
    self->receive(reply);
  uint64_t after = status_bytes("VmRSS");
  int64_t per = static_cast<int64_t>(after - before) / static_cast<int64_t>(o.idle);
  std::printf("{\"system\":\"caf\",\"policy\":\"%s\",\"idle_aggregates\":%" PRIu64
              ",\"rss_before_bytes\":%" PRIu64
              ",\"rss_after_bytes\":%" PRIu64 ",\"bytes_per_aggregate\":%" PRId64
              ",\"state_bytes\":8}\n",
              o.policy.c_str(), o.idle, before, after, per);
  std::fflush(stdout);
  if (accepted != o.idle) {
    std::fprintf(stderr, "caf_peer: %" PRIu64 " of %" PRIu64 " increments accepted\n", accepted,
                 o.idle);
    return 1;
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options o = parse_args(argc, argv);
  plan p;
  if (o.idle == 0)
    p = read_plan(o.plan_path); // before the actor system, so a bad plan costs nothing
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom_from_string(o.policy));
  cfg.set("scheduler.max-threads", static_cast<int64_t>(o.workers));
  caf::actor_system sys{cfg};
  if (sys.scheduler().num_workers() != o.workers) {
    std::fprintf(stderr, "caf_peer: scheduler runs %zu workers, not %" PRIu64 "\n",
                 sys.scheduler().num_workers(), o.workers);
    return 2;
  }
  // An unknown policy would fall back to stealing without a word: make sure.
  bool sharing = dynamic_cast<caf::scheduler::coordinator<caf::policy::work_sharing>*>(
                   &sys.scheduler()) != nullptr;
  if (sharing != (o.policy == "sharing")) {
    std::fprintf(stderr, "caf_peer: scheduler is not the %s policy asked for\n",
                 o.policy.c_str());
    return 2;
  }
  if (o.idle != 0)
    return run_idle(sys, o);
  result r;
  bool is_bank = p.workload == bank::name;
  if (o.mode == "ff")
    r = is_bank ? run_ff<bank>(sys, o, p) : run_ff<counter>(sys, o, p);
  else
    r = is_bank ? run_rr<bank>(sys, o, p) : run_rr<counter>(sys, o, p);
  return print_run(o, p, r);
}
