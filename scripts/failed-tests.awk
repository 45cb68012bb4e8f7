# failed-tests.awk: reads `go test -v` output and prints, at the end, what every failed
# test said last. A CI log that shows only its tail then still shows why a test that ran
# early failed. Usage: awk -f scripts/failed-tests.awk e2e.log
#
# A test's output is entries: a "    file_test.go:N: message" line and the lines
# indented under it (a multi-line message, a node log dump). For each failed test the
# last ENTRIES entries are printed (default 12), each as its first line and its last
# LINES-1 lines (LINES defaults to 6), of at most 300 characters each: the failure and
# the node logs' last words, not pages.
BEGIN { if (ENTRIES == "") ENTRIES = 12; if (LINES == "" || LINES < 2) LINES = 6 }
# A timed-out or crashed test binary prints no "--- FAIL" for the test it was in: the
# test running then is the one to show.
/^(panic|fatal error): / { if (cur != "") crashed = cur }
/^=== (RUN|NAME|CONT) / { cur = $3; next }
/^=== PAUSE / { next }
/^ *--- (FAIL|PASS|SKIP): / {
	if ($2 == "FAIL:" && !($3 in failed)) { order[nfailed++] = $3; failed[$3] = 1 }
	next
}
/^(FAIL|PASS|ok )/ { next }
cur == "" { next }
/^    [^ ]/ { # a new entry: its first line
	e = entries[cur]++
	text[cur, e, "head"] = substr($0, 1, 300)
	more[cur, e] = 0
	next
}
{ # a line under the entry: keep the last LINES-1 of them
	e = entries[cur] - 1
	if (e < 0) next
	text[cur, e, more[cur, e]++ % (LINES - 1)] = substr($0, 1, 300)
}
END {
	if (crashed != "" && !(crashed in failed)) { order[nfailed++] = crashed; failed[crashed] = 1 }
	if (nfailed == 0) exit
	print ""
	print "==== what the failed tests said last (the whole log: " FILENAME ") ===="
	for (i = 0; i < nfailed; i++) {
		t = order[i]
		print "---- " t
		n = entries[t]
		for (e = (n > ENTRIES ? n - ENTRIES : 0); e < n; e++) {
			print text[t, e, "head"]
			m = more[t, e]
			if (m > LINES - 1) print "        ..."
			for (j = (m > LINES - 1 ? m - (LINES - 1) : 0); j < m; j++) print text[t, e, j % (LINES - 1)]
		}
	}
}
