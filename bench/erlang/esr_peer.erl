%% bench/erlang/esr_peer.erl: the esr benchmark's Erlang/OTP peer. One
%% gen_server per aggregate, the model of Commanded and of the
%% process-per-entity systems written in Erlang and Elixir. Each aggregate runs
%% the decision logic of tools/stress/workload_{counter,bank}.c and keeps its
%% state, its own event log (a list, newest first, of {Type, Amount, Seq}) and
%% its counters. The plan file, the modes, the JSON line and the self-check are
%% the ones bench/README.md defines.
%%
%% Run by the launcher next to this file (bench/erlang/esr_peer):
%% `erl -noshell +S T:T [+P P] -pa EBIN -s esr_peer main -extra ARGS`.
%% VM flags: +S T:T (T = --workers schedulers, all online) and, only when more
%% than the default 262144 processes can be needed (--idle N, or a plan with
%% that many aggregates), +P. Everything else is left at its default because
%% nothing else measurably helped: +sbwt none/very_long and +swt moved a
%% send-bound loop by under 5%; +A (async threads) serves file drivers, idle
%% while timing. Compiled with plain `erlc` (no +debug_info, nothing native);
%% Debian's OTP 25 runs it on the BEAM JIT (erlang:system_info(emu_flavor) is
%% jit).
%%
%% Choices, each measured with 1M commands, 2 schedulers, on 2 cores:
%% - gen_server, not a plain receive loop: the loop was within run-to-run noise
%%   (0-5%), so the aggregates are what users write.
%% - message_queue_data = off_heap for every aggregate, the setting OTP's
%%   documentation advises for a process whose queue can grow. In ff a hot
%%   aggregate's queue grows to most of the commands; on the heap, each of its
%%   garbage collections copies the queue: 64 aggregates at skew 0.99 ran at
%%   0.3-2.1M commands/s on the heap, 2.4-2.6M off it. The cost is memory:
%%   a received message's fragment stays with the process until its next
%%   collection, so at 10000 aggregates the peak RSS is 40-80% higher (and
%%   about 200 bytes more per idle aggregate), at the same throughput.
%% - Aggregates are started on first use with proc_lib:spawn_opt +
%%   gen_server:enter_loop/3, the documented way to run a gen_server without
%%   gen_server:start_link's synchronous init handshake, which costs a round
%%   trip per new aggregate and, in rr, a scan of the client's mailbox full of
%%   replies (rr at 10000 aggregates: 250k/s with start_link, 300k/s without).
%% - The client holds the directory: a map from the id binary (<<"acct-K">>,
%%   <<"ctr-K">>, made before the clock starts) to the pid.
%% - ff: every command is a gen_server:cast. Then every live aggregate gets a
%%   `sync` request (gen_server:send_request/4 into a request-id collection)
%%   and the clock stops at the last reply. The audit of each log (replay,
%%   order, lowest balance) is asked for after the clock stops.
%% - rr: a command is a gen_server:cast carrying the client's pid and the
%%   command's seq; the aggregate answers with a plain message {rep, K, Seq,
%%   Accepted}. gen_server:send_request with a request-id collection is the
%%   textbook form, but it sets up and tears down a monitor per request, which
%%   aggregates that never die do not need: it ran at 215k/s against 780k/s.
%%   Send times and latencies live in an atomics array indexed by seq, off the
%%   client's heap (a growing list of latencies made the client's collections
%%   show up in p99). Latency = monotonic_time(nanosecond) at the reply minus
%%   at the send, for one request in ?TIME_EVERY (as esr-stress times a closed
%%   loop: the clock reads are the client's cost); percentiles are
%%   nearest-rank over those, sorted.
%% - peak_rss_bytes: VmHWM reset (clear_refs 5) once the plan is loaded, as
%%   esr-stress does, and read when the clock stops, before the latencies are
%%   sorted and the logs audited (that bookkeeping is not the system's).
%% - The client is a process on the same T schedulers as the aggregates.
-module(esr_peer).
-define(TIME_EVERY, 16).
-behaviour(gen_server).

-export([main/0]).
-export([agg_enter/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(SETUP_SEQ, -1).          % seq of the bank opening (not a command)
-define(OPENED, 1).              % bank event types (tools/stress/workload_bank.c)
-define(DEPOSITED, 2).
-define(WITHDRAWN, 3).
-define(INCREMENTED, 1).         % counter event type
-define(DEFAULT_WINDOW, 1024).
-define(IDLE_WINDOW, 1024).
-define(MAX_TUPLE, 16777215).    % the ids live in one tuple

-record(agg, {wl :: bank | counter,
              index :: non_neg_integer(),
              value = 0 :: integer(),
              log = [] :: [{pos_integer(), integer(), integer()}],
              accepted = 0 :: non_neg_integer(),
              rejected = 0 :: non_neg_integer(),
              effects = 0 :: integer()}).   % sum of the accepted commands' effects

-record(opts, {plan, commands, workers, mode, window = ?DEFAULT_WINDOW, idle}).

%% ---------------------------------------------------------------------------
%% Entry: parse, read the plan, run the client in a process of its own, print.

main() ->
    O = parse_args(init:get_plain_arguments()),
    check_schedulers(O#opts.workers),
    Main = self(),
    Job = case O#opts.idle of
              undefined ->
                  Plan = read_plan(O#opts.plan),
                  check_process_limit(element(2, Plan)),
                  fun() -> run_plan(O, Plan) end;
              N ->
                  check_process_limit(N),
                  fun() -> run_idle(N) end
          end,
    {Pid, Mon} = spawn_opt(fun() -> Main ! {self(), result, Job()} end, [monitor]),
    receive
        {Pid, result, {Line, Code}} ->
            io:put_chars([Line, $\n]),
            erlang:halt(Code);
        {'DOWN', Mon, process, Pid, Reason} ->
            io:format(standard_error, "esr_peer: the client crashed: ~0p~n", [Reason]),
            erlang:halt(1)
    end.

usage(Fmt, Args) ->
    io:format(standard_error, "esr_peer: " ++ Fmt ++ " (usage: esr_peer --plan FILE "
              "--commands N --workers T --mode ff|rr [--window W], or --idle N "
              "--workers T)~n", Args),
    erlang:halt(2).

fatal(Fmt, Args) ->
    io:format(standard_error, "esr_peer: " ++ Fmt ++ "~n", Args),
    erlang:halt(2).

%% ---------------------------------------------------------------------------
%% The command line.

parse_args(Args) ->
    {O, Seen} = parse_args(Args, #opts{}, #{}),
    Has = fun(K) -> maps:is_key(K, Seen) end,
    Has(workers) orelse usage("--workers T is required", []),
    case Has(idle) of
        true ->
            lists:any(Has, [plan, commands, mode, window]) andalso
                usage("--idle takes only --workers besides", []),
            O;
        false ->
            Has(plan) orelse usage("--plan FILE is required (or --idle N)", []),
            Has(commands) orelse usage("--commands N is required", []),
            Has(mode) orelse usage("--mode ff|rr is required", []),
            Has(window) andalso O#opts.mode =/= rr andalso
                usage("--window applies to --mode rr only", []),
            O
    end.

parse_args([], O, Seen) ->
    {O, Seen};
parse_args(["--" ++ Arg | Rest], O, Seen) ->
    {Name, Value, Rest2} =
        case string:split(Arg, "=") of
            [N, V] -> {N, V, Rest};
            [N] when Rest =/= [] -> {N, hd(Rest), tl(Rest)};
            [N] -> usage("--~ts needs a value", [N])
        end,
    Key = option(Name),
    maps:is_key(Key, Seen) andalso usage("--~ts given twice", [Name]),
    parse_args(Rest2, set(Key, Name, Value, O), Seen#{Key => true});
parse_args([Arg | _], _, _) ->
    usage("unknown argument '~ts'", [Arg]).

option("plan") -> plan;
option("commands") -> commands;
option("workers") -> workers;
option("mode") -> mode;
option("window") -> window;
option("idle") -> idle;
option(Name) -> usage("unknown option --~ts", [Name]).

set(plan, _, V, O) -> O#opts{plan = V};
set(commands, N, V, O) -> O#opts{commands = count(N, V, 1 bsl 62)};
set(workers, N, V, O) -> O#opts{workers = count(N, V, 1024)};
set(window, N, V, O) -> O#opts{window = count(N, V, 1 bsl 24)};
set(idle, N, V, O) -> O#opts{idle = count(N, V, 134217727)};
set(mode, _, "ff", O) -> O#opts{mode = ff};
set(mode, _, "rr", O) -> O#opts{mode = rr};
set(mode, _, V, _) -> usage("--mode must be ff or rr, not '~ts'", [V]).

count(Name, Text, Max) ->
    case catch list_to_integer(Text) of
        N when is_integer(N), N >= 1, N =< Max, hd(Text) =/= $+, hd(Text) =/= $- -> N;
        _ -> usage("--~s needs a whole number from 1 to ~b, not '~ts'", [Name, Max, Text])
    end.

check_schedulers(T) ->
    case erlang:system_info(schedulers_online) of
        T -> ok;
        S -> fatal("the VM runs ~b schedulers, not ~b: start it with +S ~b:~b "
                   "(the launcher does)", [S, T, T, T])
    end.

check_process_limit(Aggregates) ->
    Limit = erlang:system_info(process_limit),
    Limit >= Aggregates + 1000 orelse
        fatal("~b aggregates need more processes than the VM's limit ~b: start it "
              "with +P ~b (the launcher does)", [Aggregates, Limit, Aggregates + 4096]).

%% ---------------------------------------------------------------------------
%% The plan file (format: bench/README.md). Kept as one binary; the commands
%% are walked with binary matching.

read_plan(Path) ->
    Bin = case file:read_file(Path) of
              {ok, B} -> B;
              {error, Why} -> fatal("cannot read plan ~ts: ~ts", [Path, file:format_error(Why)])
          end,
    Size = byte_size(Bin),
    Size >= 48 orelse
        fatal("plan ~ts is truncated (~b bytes, the header alone is 48)", [Path, Size]),
    <<Magic:8/binary, Name0:16/binary, Aggs:32/little, Zero:32/little, N:64/little,
      _Seed:64/little, Cmds/binary>> = Bin,
    Magic =:= <<"ESRPLAN1">> orelse fatal("plan ~ts has a bad magic (not ESRPLAN1)", [Path]),
    Name = hd(binary:split(Name0, <<0>>)),
    Wl = case Name of
             <<"bank">> -> bank;
             <<"counter">> -> counter;
             _ -> fatal("plan ~ts: workload '~ts' is not one this peer runs (counter, bank)",
                        [Path, Name])
         end,
    (Aggs > 0 andalso Zero =:= 0) orelse
        fatal("plan ~ts: bad header (aggregates 0 or reserved field set)", [Path]),
    Aggs =< ?MAX_TUPLE orelse
        fatal("plan ~ts: ~b aggregates, this peer takes at most ~b", [Path, Aggs, ?MAX_TUPLE]),
    N > 0 orelse fatal("plan ~ts holds no commands", [Path]),
    byte_size(Cmds) =:= N * 16 orelse
        fatal("plan ~ts is truncated or has trailing bytes (~b commands announced, ~b bytes)",
              [Path, N, Size]),
    case first_out_of_range(Cmds, Aggs, 0) of
        none -> ok;
        {I, K} -> fatal("plan ~ts: command ~b names aggregate ~b of ~b", [Path, I, K, Aggs])
    end,
    {Wl, Aggs, N, Cmds}.

first_out_of_range(<<K:32/little, _:12/binary, Rest/binary>>, Aggs, I) ->
    if K < Aggs -> first_out_of_range(Rest, Aggs, I + 1);
       true -> {I, K}
    end;
first_out_of_range(<<>>, _, _) ->
    none.

%% ---------------------------------------------------------------------------
%% The workloads (tools/stress/workload_*.c): decide -> {Type} | reject.

prefix(bank) -> <<"acct">>;
prefix(counter) -> <<"ctr">>.

opening(bank) -> 1000;
opening(counter) -> 0.

effect(bank, 0, Amount) -> Amount;
effect(bank, _, Amount) -> -Amount;
effect(counter, _, Amount) -> Amount.

decide(counter, _Value, _Kind, _Amount) -> ?INCREMENTED;
decide(bank, _Balance, 0, _Amount) -> ?DEPOSITED;
decide(bank, Balance, _Kind, Amount) when Balance < Amount -> reject;
decide(bank, _Balance, _Kind, _Amount) -> ?WITHDRAWN.

fold(counter, ?INCREMENTED, Amount, Value) -> Value + Amount;
fold(bank, ?OPENED, Amount, _) -> Amount;
fold(bank, ?DEPOSITED, Amount, Balance) -> Balance + Amount;
fold(bank, ?WITHDRAWN, Amount, Balance) -> Balance - Amount;
fold(_, _, _, Value) -> Value.

%% ---------------------------------------------------------------------------
%% The aggregate: a gen_server.

start_aggregate(Wl, K) ->
    proc_lib:spawn_opt(?MODULE, agg_enter, [Wl, K], [link, {message_queue_data, off_heap}]).

agg_enter(Wl, K) ->
    {ok, S} = init({Wl, K}),
    gen_server:enter_loop(?MODULE, [], S).

init({bank, K}) ->   % the opening is an event, not a command
    {ok, #agg{wl = bank, index = K, value = fold(bank, ?OPENED, 1000, 0),
              log = [{?OPENED, 1000, ?SETUP_SEQ}]}};
init({counter, K}) ->
    {ok, #agg{wl = counter, index = K}}.

%% One command: decide; if accepted, record the event, then fold it.
command(Kind, Amount, Seq, #agg{wl = Wl, value = V} = S) ->
    case decide(Wl, V, Kind, Amount) of
        reject ->
            {false, S#agg{rejected = S#agg.rejected + 1}};
        Type ->
            {true, S#agg{log = [{Type, Amount, Seq} | S#agg.log],
                         value = fold(Wl, Type, Amount, V),
                         accepted = S#agg.accepted + 1,
                         effects = S#agg.effects + effect(Wl, Kind, Amount)}}
    end.

handle_cast({cmd, Kind, Amount, Seq}, S) ->
    {_, S2} = command(Kind, Amount, Seq, S),
    {noreply, S2};
handle_cast({req, Client, Kind, Amount, Seq}, S) ->
    {Ok, S2} = command(Kind, Amount, Seq, S),
    Client ! {rep, S#agg.index, Seq, Ok},
    {noreply, S2}.

handle_call(sync, _From, S) ->
    {reply, S#agg.index, S};
handle_call(audit, _From, S) ->
    {reply, audit(S), S}.

handle_info(_Msg, S) ->
    {noreply, S}.

%% What the aggregate tells the client at the end, the replay of its own log:
%% {Index, Value, Events, Accepted, Rejected, Effects, Replayed, Lowest, Ordered}.
%% Ordered: seqs strictly increasing; a bank's log starts with its opening, the
%% only event with the setup seq.
audit(#agg{wl = Wl, index = K, value = V, log = Log, accepted = A, rejected = R,
           effects = E}) ->
    Events = lists:reverse(Log),
    Opens = case {Wl, Events} of
                {bank, [{?OPENED, _, ?SETUP_SEQ} | _]} -> true;
                {bank, _} -> false;
                {counter, _} -> true
            end,
    Before = case Wl of bank -> ?SETUP_SEQ - 1; counter -> ?SETUP_SEQ end,
    {Replayed, Lowest, Ordered} = replay(Wl, Events, 0, none, Before, Opens),
    {K, V, length(Log), A, R, E, Replayed, Lowest, Ordered}.

replay(Wl, [{Type, Amount, Seq} | Rest], Value, Lowest, Last, Ordered) ->
    V = fold(Wl, Type, Amount, Value),
    replay(Wl, Rest, V, min(V, Lowest), Seq, Ordered andalso Seq > Last);
replay(_, [], Value, Lowest, _, Ordered) ->   % a number is below any atom: none loses
    {Value, if Lowest =:= none -> 0; true -> Lowest end, Ordered}.

%% ---------------------------------------------------------------------------
%% The client.

ids(Wl, Aggs) ->
    P = prefix(Wl),
    list_to_tuple([<<P/binary, $-, (integer_to_binary(K))/binary>>
                   || K <- lists:seq(0, Aggs - 1)]).

%% The aggregate of index K, started on first use.
pid_of(K, Dir, Ids, Wl) ->
    Id = element(K + 1, Ids),
    case Dir of
        #{Id := Pid} -> {Pid, Dir};
        #{} -> Pid = start_aggregate(Wl, K), {Pid, Dir#{Id => Pid}}
    end.

now_ns() ->
    erlang:monotonic_time(nanosecond).

run_plan(O, {Wl, Aggs, _, Cmds} = Plan) ->
    process_flag(trap_exit, true),     % an aggregate's crash must not go unseen
    Ids = ids(Wl, Aggs),
    garbage_collect(),
    reset_peak_rss(),
    {Secs, Dir, Latency, Replies} =
        case O#opts.mode of
            ff -> run_ff(O#opts.commands, Cmds, Ids, Wl);
            rr -> run_rr(O#opts.commands, O#opts.window, Cmds, Ids, Wl, Aggs)
        end,
    Audits = ask_all(Dir, audit),
    Peak = get(peak),
    {Acc, Rej, Events, Verdict} = check(O#opts.commands, Plan, Audits, Replies),
    Lat = case Latency of
              none -> "null";
              {P50, P99, P999} -> io_lib:format("{\"p50\":~b,\"p99\":~b,\"p999\":~b}",
                                                [P50, P99, P999])
          end,
    N = O#opts.commands,
    Line = io_lib:format(
             "{\"system\":\"erlang\",\"mode\":\"~s\",\"workload\":\"~s\",\"aggregates\":~b,"
             "\"workers\":~b,\"commands\":~b,\"seconds\":~.6f,\"commands_per_s\":~b,"
             "\"latency_ns\":~s,\"peak_rss_bytes\":~b,\"accepted\":~b,\"rejected\":~b,"
             "\"events\":~b,\"check\":\"~s\"}",
             [O#opts.mode, Wl, Aggs, O#opts.workers, N, Secs,
              if Secs > 0 -> round(N / Secs); true -> 0 end, Lat, Peak, Acc, Rej, Events,
              case Verdict of ok -> "ok"; Why -> ["failed: ", Why] end]),
    {Line, case Verdict of ok -> 0; _ -> 1 end}.

%% --mode ff: cast everything, then a sync round with every live aggregate.
run_ff(N, Cmds, Ids, Wl) ->
    T0 = now_ns(),
    Dir = ff_send(Cmds, Cmds, 0, N, #{}, Ids, Wl),
    _ = ask_all(Dir, sync),
    T1 = now_ns(),
    put(peak, status_bytes(<<"VmHWM">>)),
    {(T1 - T0) / 1.0e9, Dir, none, none}.

ff_send(_, _, N, N, Dir, _, _) ->
    Dir;
ff_send(<<K:32/little, Kind:32/little, Amount:64/little-signed, Rest/binary>>, All, I, N,
        Dir, Ids, Wl) ->
    {Pid, Dir2} = pid_of(K, Dir, Ids, Wl),
    gen_server:cast(Pid, {cmd, Kind, Amount, I}),
    ff_send(Rest, All, I + 1, N, Dir2, Ids, Wl);
ff_send(<<>>, All, I, N, Dir, Ids, Wl) ->
    ff_send(All, All, I, N, Dir, Ids, Wl).

%% Send Req to every aggregate in Dir, wait for all; replies in no set order.
ask_all(Dir, Req) ->
    Coll = maps:fold(fun(_, Pid, C) -> gen_server:send_request(Pid, Req, Pid, C) end,
                     gen_server:reqids_new(), Dir),
    collect(Coll, []).

collect(Coll, Acc) ->
    case gen_server:receive_response(Coll, infinity, true) of
        no_request -> Acc;
        {{reply, R}, _, Coll2} -> collect(Coll2, [R | Acc]);
        {{error, {Why, _}}, Pid, _} -> exit({aggregate_failed, Pid, Why})
    end.

%% --mode rr: at most W requests in flight; each reply lets the next one go.
run_rr(N, W, Cmds, Ids, Wl, Aggs) ->
    ByAgg = counters:new(Aggs, []),          % accepted per aggregate, from replies
    Times = atomics:new(N, []),              % send time, then latency, by seq + 1
    T0 = now_ns(),
    {Rest, I, Dir} = rr_fill(Cmds, Cmds, 0, min(N, W), #{}, Ids, Wl, Times),
    {Dir2, Acc, Rej} = rr_loop(Rest, Cmds, I, N, 0, Dir, Ids, Wl, ByAgg, Times, 0, 0),
    T1 = now_ns(),
    put(peak, status_bytes(<<"VmHWM">>)),
    Sorted = list_to_tuple(lists:sort([atomics:get(Times, J)
                                       || J <- lists:seq(1, N, ?TIME_EVERY)])),
    M = tuple_size(Sorted),
    Pct = fun(Q) -> element(max(1, min(M, ceil(Q * M))), Sorted) end,
    {(T1 - T0) / 1.0e9, Dir2, {Pct(0.50), Pct(0.99), Pct(0.999)}, {ByAgg, Acc, Rej}}.

rr_fill(Rest, _, I, I, Dir, _, _, _) ->
    {Rest, I, Dir};
rr_fill(Rest, All, I, Stop, Dir, Ids, Wl, Times) ->
    {Rest2, Dir2} = rr_send(Rest, All, I, Dir, Ids, Wl, Times),
    rr_fill(Rest2, All, I + 1, Stop, Dir2, Ids, Wl, Times).

rr_send(<<K:32/little, Kind:32/little, Amount:64/little-signed, Rest/binary>>, _All, I,
        Dir, Ids, Wl, Times) ->
    {Pid, Dir2} = pid_of(K, Dir, Ids, Wl),
    I rem ?TIME_EVERY =:= 0 andalso atomics:put(Times, I + 1, now_ns()),
    gen_server:cast(Pid, {req, self(), Kind, Amount, I}),
    {Rest, Dir2};
rr_send(<<>>, All, I, Dir, Ids, Wl, Times) ->
    rr_send(All, All, I, Dir, Ids, Wl, Times).

rr_loop(_, _, _, N, N, Dir, _, _, _, _, Acc, Rej) ->
    {Dir, Acc, Rej};
rr_loop(Rest, All, I, N, Done, Dir, Ids, Wl, ByAgg, Times, Acc, Rej) ->
    receive
        {rep, K, Seq, Ok} ->
            Seq rem ?TIME_EVERY =:= 0 andalso
                atomics:put(Times, Seq + 1, now_ns() - atomics:get(Times, Seq + 1)),
            {Acc2, Rej2} = case Ok of
                               true -> counters:add(ByAgg, K + 1, 1), {Acc + 1, Rej};
                               false -> {Acc, Rej + 1}
                           end,
            if I < N ->
                    {Rest2, Dir2} = rr_send(Rest, All, I, Dir, Ids, Wl, Times),
                    rr_loop(Rest2, All, I + 1, N, Done + 1, Dir2, Ids, Wl, ByAgg, Times,
                            Acc2, Rej2);
               true ->
                    rr_loop(Rest, All, I, N, Done + 1, Dir, Ids, Wl, ByAgg, Times, Acc2, Rej2)
            end;
        {'EXIT', Pid, Why} when Why =/= normal ->
            exit({aggregate_failed, Pid, Why})
    end.

%% ---------------------------------------------------------------------------
%% The check (bench/README.md): ok, or what failed first.

check(N, {Wl, Aggs, _, Cmds}, Audits, Replies) ->
    Sent = counters:new(Aggs, []),
    count_sent(Cmds, Cmds, 0, N, Sent),
    Live = length([k || K <- lists:seq(1, Aggs), counters:get(Sent, K) > 0]),
    Opening = case Wl of bank -> 1; counter -> 0 end,
    Base = opening(Wl),
    {Acc, Rej, Events} = lists:foldl(fun({_, _, Ev, A, R, _, _, _, _}, {A0, R0, E0}) ->
                                             {A0 + A, R0 + R, E0 + Ev}
                                     end, {0, 0, 0}, Audits),
    Seen = counters:new(Aggs, []),
    Id = fun(K) -> [prefix(Wl), $-, integer_to_list(K)] end,
    PerAgg = fun({K, V, Ev, A, R, E, Replayed, Lowest, Ordered}, ok) ->
                     Twice = K >= Aggs orelse counters:get(Seen, K + 1) > 0,
                     K < Aggs andalso counters:add(Seen, K + 1, 1),
                     S = if K < Aggs -> counters:get(Sent, K + 1); true -> -1 end,
                     if Twice ->
                             io_lib:format("summary from ~s twice or unknown", [Id(K)]);
                        A + R =/= S ->
                             io_lib:format("~s decided ~b of ~b commands", [Id(K), A + R, S]);
                        Ev =/= A + Opening ->
                             io_lib:format("~s holds ~b events for ~b accepted", [Id(K), Ev, A]);
                        not Ordered ->
                             io_lib:format("~s log out of order or opening misplaced", [Id(K)]);
                        Lowest < 0; V < 0 ->
                             io_lib:format("~s went below zero", [Id(K)]);
                        V =/= Base + E ->
                             io_lib:format("~s state ~b is not opening + accepted effects ~b",
                                           [Id(K), V, Base + E]);
                        Replayed =/= V ->
                             io_lib:format("~s state ~b differs from its log's replay ~b",
                                           [Id(K), V, Replayed]);
                        true ->
                             case Replies of
                                 {ByAgg, _, _} ->
                                     case counters:get(ByAgg, K + 1) of
                                         A -> ok;
                                         Told -> io_lib:format("~s was told ~b accepted, holds ~b",
                                                               [Id(K), Told, A])
                                     end;
                                 none -> ok
                             end
                     end;
                (_, Why) -> Why
             end,
    Verdict0 = lists:foldl(PerAgg, ok, Audits),
    Verdict =
        if Verdict0 =/= ok -> Verdict0;
           length(Audits) =/= Live ->
                io_lib:format("~b actors answered, ~b were commanded", [length(Audits), Live]);
           Acc + Rej =/= N ->
                io_lib:format("accepted + rejected = ~b, commands ~b", [Acc + Rej, N]);
           true ->
                case Replies of
                    {_, RA, _} when RA =/= Acc ->
                        io_lib:format("replies said ~b accepted, actors hold ~b", [RA, Acc]);
                    {_, RA, RR} when RA + RR =/= N ->
                        "replies do not add up to the commands";
                    _ -> ok
                end
        end,
    {Acc, Rej, Events, Verdict}.

%% Count, per aggregate, the commands 0 .. N-1 (record i mod n).
count_sent(_, _, N, N, _) ->
    ok;
count_sent(<<K:32/little, _:12/binary, Rest/binary>>, All, I, N, Sent) ->
    counters:add(Sent, K + 1, 1),
    count_sent(Rest, All, I + 1, N, Sent);
count_sent(<<>>, All, I, N, Sent) ->
    count_sent(All, All, I, N, Sent).

%% ---------------------------------------------------------------------------
%% --idle N: N counters, one increment each (up to 1024 in flight), all awaited.

run_idle(N) ->
    process_flag(trap_exit, true),
    garbage_collect(),
    Before = status_bytes(<<"VmRSS">>),
    {Dir, Accepted} = idle_loop(0, N, 0, #{}, 0),
    After = status_bytes(<<"VmRSS">>),
    map_size(Dir) =:= N orelse exit(lost_aggregates),
    Line = io_lib:format(
             "{\"system\":\"erlang\",\"idle_aggregates\":~b,\"rss_before_bytes\":~b,"
             "\"rss_after_bytes\":~b,\"bytes_per_aggregate\":~b,\"state_bytes\":8}",
             [N, Before, After, (After - Before) div N]),
    case Accepted of
        N -> {Line, 0};
        _ -> io:format(standard_error, "esr_peer: ~b of ~b increments accepted~n",
                       [Accepted, N]),
             {Line, 1}
    end.

idle_loop(N, N, 0, Dir, Accepted) ->
    {Dir, Accepted};
idle_loop(K, N, InFlight, Dir, Accepted) when K < N, InFlight < ?IDLE_WINDOW ->
    Id = <<"ctr-", (integer_to_binary(K))/binary>>,
    Pid = start_aggregate(counter, K),
    gen_server:cast(Pid, {req, self(), 0, 1, K}),
    idle_loop(K + 1, N, InFlight + 1, Dir#{Id => Pid}, Accepted);
idle_loop(K, N, InFlight, Dir, Accepted) ->
    receive
        {rep, _, _, Ok} ->
            idle_loop(K, N, InFlight - 1, Dir, Accepted + if Ok -> 1; true -> 0 end);
        {'EXIT', Pid, Why} when Why =/= normal ->
            exit({aggregate_failed, Pid, Why})
    end.

%% ---------------------------------------------------------------------------
%% Memory, from /proc/self/status.

status_bytes(Field) ->
    {ok, Status} = file:read_file("/proc/self/status"),
    case binary:match(Status, <<"\n", Field/binary, ":">>) of
        {At, Len} ->
            <<_:(At + Len)/binary, Tail/binary>> = Status,
            [Num | _] = string:lexemes(Tail, " \t\n"),
            binary_to_integer(Num) * 1024;
        nomatch ->
            0
    end.

%% Reset VmHWM to the current RSS, as esr-stress does before its run.
reset_peak_rss() ->
    _ = file:write_file("/proc/self/clear_refs", <<"5">>),
    ok.
