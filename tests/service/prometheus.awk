# tests/service/prometheus.awk: checks a Prometheus text exposition on
# standard input. Prints one line per problem and exits 1 if there was one:
#  - every sample line is `name{labels} value [timestamp]`, value numeric
#    (or NaN / +Inf / -Inf);
#  - every sample's metric has a # TYPE line before it (histogram and summary
#    samples through their base name);
#  - each histogram series' buckets go up in le and never go down in value,
#    end at le="+Inf", and that bucket equals the series' _count;
#  - there is at least one histogram.
function problem(msg) {
	print "metrics line " NR ": " msg ": " $0
	bad = 1
}
function num(s) {
	return s ~ /^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$/ || s ~ /^(NaN|[-+]?Inf)$/
}
function lenum(s) {
	if (s == "+Inf") return "inf"
	return s + 0
}
/^#/ {
	if ($2 == "TYPE") {
		if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/)
			problem("bad TYPE line")
		else if ($3 in type)
			problem("second TYPE for " $3)
		else
			type[$3] = $4
	}
	next
}
/^[ \t]*$/ { next }
{
	line = $0
	if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { problem("no metric name"); next }
	name = substr(line, 1, RLENGTH)
	rest = substr(line, RLENGTH + 1)
	labels = ""
	if (substr(rest, 1, 1) == "{") {
		if (!match(rest, /^\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*,?)?\}/)) {
			problem("bad labels"); next
		}
		labels = substr(rest, 2, RLENGTH - 2)
		rest = substr(rest, RLENGTH + 1)
	}
	n = split(rest, f, " ")
	if (substr(rest, 1, 1) != " " || n < 1 || n > 2 || !num(f[1]) || (n == 2 && f[2] !~ /^-?[0-9]+$/)) {
		problem("not `name{labels} value`"); next
	}
	value = f[1]
	samples++
	base = name
	t = type[name]
	if (t == "" && name ~ /_(bucket|sum|count)$/) {
		base = name
		sub(/_(bucket|sum|count)$/, "", base)
		t = type[base]
		if (t != "histogram" && t != "summary") t = ""
	}
	if (t == "") { problem("no # TYPE before it"); next }
	if (t != "histogram") next
	# The series: the base name and its labels less le.
	le = ""
	if (match(labels, /(^|,)le="[^"]*"/)) {
		le = substr(labels, RSTART, RLENGTH)
		sub(/^,?le="/, "", le)
		sub(/"$/, "", le)
	}
	rest_labels = labels
	gsub(/(^|,)le="[^"]*"/, "", rest_labels)
	sub(/^,/, "", rest_labels)
	key = base "{" rest_labels "}"
	histograms[key] = 1
	if (name == base "_bucket") {
		if (le == "") { problem("bucket without le"); next }
		if (!num(le)) { problem("le is not a number"); next }
		if (key in last_le) {
			if (last_le[key] == "+Inf") problem("bucket after +Inf")
			else if (le != "+Inf" && lenum(le) <= lenum(last_le[key])) problem("le does not go up")
			if (value + 0 < last_value[key] + 0) problem("bucket count goes down (not cumulative)")
		}
		last_le[key] = le
		last_value[key] = value
	} else if (name == base "_count") {
		counted[key] = value
		if (!(key in last_le)) problem("_count before any bucket")
		else if (last_le[key] != "+Inf") problem("buckets do not end at le=\"+Inf\"")
		else if (last_value[key] + 0 != value + 0)
			problem("+Inf bucket " last_value[key] " differs from _count " value)
	}
}
END {
	nh = 0
	for (k in histograms) {
		nh++
		if (!(k in counted)) { print "histogram " k " has no _count"; bad = 1 }
	}
	if (samples == 0) { print "no samples at all"; bad = 1 }
	if (nh == 0) { print "no histogram"; bad = 1 }
	exit bad
}
