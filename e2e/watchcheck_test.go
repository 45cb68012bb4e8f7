package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The fault runs' watch check (issue #16): watchers follow the workload's keys from
// a cursor taken before it starts, reconnecting with their last cursor whenever a
// node dies, stalls or is cut off, and what each saw is checked against the
// workload's history. Every write carries a value unique in the run, and events carry
// the previous value (prev=true), so per key:
//   - replaying the events is a chain: each event's previous value is the value the
//     one before it left (a lost or repeated event breaks it);
//   - each value is put once (a repeat is a duplicate), and only by a write the
//     workload made and did not see refused (a 412's value is a phantom);
//   - every acknowledged write is there, and one acknowledged before another was
//     called comes first (real-time order, as linearizability requires);
//   - every watcher saw the same sequence, ending at the value of the final read.

// watchChange is one put or delete event as a checker needs it.
type watchChange struct {
	ID     string
	Delete bool
	Value  string // put: the new value
	Prev   string // the value before (the watchers ask with prev=true); "" when the key was absent
}

// checkWatchedHistory answers every inconsistency between the per-key event
// sequences of the watchers (seen[w][key]) and the history; finals is each key's
// value after the run ("" for absent).
func checkWatchedHistory(history []porcupine.Operation, seen []map[string][]watchChange, finals map[string]string) []string {
	var problems []string
	issued, refused := map[string]bool{}, map[string]bool{}
	type acked struct {
		value     string
		call, ret int64
	}
	ackedByKey := map[string][]acked{}
	for _, op := range history {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		if in.Op != opPut && in.Op != opCAS {
			continue
		}
		switch out.Result {
		case outOK, outCreated:
			issued[in.Value] = true
			ackedByKey[in.Key] = append(ackedByKey[in.Key], acked{in.Value, op.Call, op.Return})
		case outUnknown:
			issued[in.Value] = true
		case outFailed, outNotFound:
			refused[in.Value] = true
		}
	}
	for wi, byKey := range seen {
		for _, key := range keysOf(byKey, finals) {
			events := byKey[key]
			ids, pos := map[string]bool{}, map[string]int{}
			state := ""
			for i, e := range events {
				if ids[e.ID] {
					problems = append(problems, fmt.Sprintf("watcher %d, %s: event %s delivered twice", wi, key, e.ID))
				}
				ids[e.ID] = true
				if e.Prev != state {
					problems = append(problems, fmt.Sprintf("watcher %d, %s: event %d (%s) follows %q but says the value before was %q: an event was lost or repeated", wi, key, i, e.ID, state, e.Prev))
				}
				if e.Delete {
					state = ""
					continue
				}
				state = e.Value
				switch {
				case refused[e.Value]:
					problems = append(problems, fmt.Sprintf("watcher %d, %s: put of %q, a write that was refused", wi, key, e.Value))
				case !issued[e.Value]:
					problems = append(problems, fmt.Sprintf("watcher %d, %s: put of %q, a value no write carried", wi, key, e.Value))
				}
				if _, dup := pos[e.Value]; dup {
					problems = append(problems, fmt.Sprintf("watcher %d, %s: %q put twice", wi, key, e.Value))
				} else {
					pos[e.Value] = i
				}
			}
			if want, ok := finals[key]; ok && state != want {
				problems = append(problems, fmt.Sprintf("watcher %d, %s: the events end at %q, the final read says %q", wi, key, state, want))
			}
			writes := ackedByKey[key]
			for _, a := range writes {
				if _, ok := pos[a.value]; !ok {
					problems = append(problems, fmt.Sprintf("watcher %d, %s: the acknowledged write of %q is missing", wi, key, a.value))
				}
			}
			for _, a := range writes {
				for _, b := range writes {
					pa, okA := pos[a.value]
					pb, okB := pos[b.value]
					if okA && okB && a.ret < b.call && pa > pb {
						problems = append(problems, fmt.Sprintf("watcher %d, %s: %q (acknowledged before %q was sent) comes after it", wi, key, a.value, b.value))
					}
				}
			}
		}
	}
	for wi := 1; wi < len(seen); wi++ {
		for _, key := range keysOf(seen[0], seen[wi]) {
			if a, b := renderChanges(seen[0][key]), renderChanges(seen[wi][key]); a != b {
				problems = append(problems, fmt.Sprintf("%s: watcher 0 saw %s, watcher %d saw %s", key, a, wi, b))
			}
		}
	}
	slices.Sort(problems)
	return problems
}

// keysOf is the sorted union of two maps' keys.
func keysOf[A, B any](a map[string]A, b map[string]B) []string {
	keys := append(slices.Collect(maps.Keys(a)), slices.Collect(maps.Keys(b))...)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func renderChanges(events []watchChange) string {
	var b strings.Builder
	for _, e := range events {
		if e.Delete {
			b.WriteString("del,")
		} else {
			b.WriteString(e.Value + ",")
		}
	}
	return b.String()
}
