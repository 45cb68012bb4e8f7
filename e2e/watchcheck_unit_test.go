package e2e

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestWatchChecker: the fault runs' watch check finds each kind of inconsistency it
// exists for, and passes a consistent sequence (no cluster needed).
func TestWatchChecker(t *testing.T) {
	put := func(key, v string, res outcome, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: kvInput{Op: opPut, Key: key, Value: v}, Output: kvOutput{Result: res}, Call: call, Return: ret}
	}
	history := []porcupine.Operation{
		put("k", "v1", outCreated, 0, 10),
		put("k", "v2", outOK, 20, 30),
		put("k", "v3", outUnknown, 40, 1<<62),
		{Input: kvInput{Op: opCAS, Key: "k", Value: "v4", Expect: "v9"}, Output: kvOutput{Result: outFailed}, Call: 50, Return: 60},
	}
	ev := func(id, v, prev string) watchChange { return watchChange{ID: id, Value: v, Prev: prev} }
	del := func(id, prev string) watchChange { return watchChange{ID: id, Delete: true, Prev: prev} }
	good := []watchChange{ev("a", "v1", ""), ev("b", "v2", "v1"), del("c", "v2")}
	cases := []struct {
		name   string
		seen   [][]watchChange
		finals string
		want   string // a substring of a problem; "" for none
	}{
		{"consistent", [][]watchChange{good, good}, "", ""},
		{"the unknown write applied", [][]watchChange{{ev("a", "v1", ""), ev("b", "v2", "v1"), ev("d", "v3", "v2")}}, "v3", ""},
		{"lost event", [][]watchChange{{ev("a", "v1", ""), del("c", "v2")}}, "", "was lost or repeated"},
		{"same id twice", [][]watchChange{{ev("a", "v1", ""), ev("a", "v1", ""), ev("b", "v2", "v1"), del("c", "v2")}}, "", "delivered twice"},
		{"value put twice", [][]watchChange{{ev("a", "v1", ""), ev("b", "v2", "v1"), ev("b2", "v2", "v2"), del("c", "v2")}}, "", "put twice"},
		{"refused write", [][]watchChange{{ev("a", "v1", ""), ev("b", "v2", "v1"), ev("e", "v4", "v2")}}, "v4", "was refused"},
		{"phantom", [][]watchChange{{ev("a", "v1", ""), ev("b", "v2", "v1"), ev("e", "zz", "v2")}}, "zz", "no write carried"},
		{"acknowledged write missing", [][]watchChange{{ev("b", "v2", "")}}, "v2", "is missing"},
		{"real-time order broken", [][]watchChange{{ev("b", "v2", ""), ev("a", "v1", "v2"), del("c", "v1")}}, "", "comes after"},
		{"ends elsewhere", [][]watchChange{good}, "v2", "the final read says"},
		{"watchers disagree", [][]watchChange{good, {ev("a", "v1", ""), ev("b", "v2", "v1"), ev("d", "v3", "v2"), del("c", "v3")}}, "", "watcher 1 saw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seen []map[string][]watchChange
			for _, s := range tc.seen {
				seen = append(seen, map[string][]watchChange{"k": s})
			}
			problems := checkWatchedHistory(history, seen, map[string]string{"k": tc.finals})
			joined := strings.Join(problems, "\n")
			if tc.want == "" && len(problems) > 0 || tc.want != "" && !strings.Contains(joined, tc.want) {
				t.Fatalf("problems %q, want one containing %q", joined, tc.want)
			}
		})
	}
}
