package e2e

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// The linearizability model: one register per key, partitioned by key. Every write
// carries a value unique in the run, so "If-Match: <etag read with value v>" succeeds
// exactly when the key's current value is v, and the model can track values alone.

type opKind int

const (
	opGet opKind = iota
	opPut
	opCAS
	opDelete
)

type kvInput struct {
	Op     opKind
	Key    string
	Value  string // put, cas: the new value
	Expect string // cas: the value whose ETag was sent in If-Match
}

type outcome int

const (
	outOK       outcome = iota // get found / delete deleted / cas won / put replaced
	outCreated                 // put created the key
	outNotFound                // get or delete of an absent key
	outFailed                  // cas: 412
	outUnknown                 // a write whose fate is not known
)

type kvOutput struct {
	Result outcome
	Value  string // get
}

// kvModel checks one key's history; the state is the value ("" when absent).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(string), input.(kvInput), output.(kvOutput)
		switch in.Op {
		case opGet:
			if out.Result == outNotFound {
				return s == "", s
			}
			return out.Value == s, s
		case opPut:
			switch out.Result {
			case outCreated:
				return s == "", in.Value
			case outOK:
				return s != "", in.Value
			default: // unknown: it happened here (or, placed last, never)
				return true, in.Value
			}
		case opCAS:
			switch out.Result {
			case outOK:
				return s == in.Expect, in.Value
			case outFailed:
				return s != in.Expect, s
			default:
				if s == in.Expect {
					return true, in.Value
				}
				return true, s
			}
		case opDelete:
			switch out.Result {
			case outOK:
				return s != "", ""
			case outNotFound:
				return s == "", s
			default:
				return true, ""
			}
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := [...]string{"ok", "created", "404", "412", "unknown"}[out.Result]
		switch in.Op {
		case opGet:
			if out.Result == outNotFound {
				return fmt.Sprintf("get(%s) -> 404", in.Key)
			}
			return fmt.Sprintf("get(%s) -> %s", in.Key, out.Value)
		case opPut:
			return fmt.Sprintf("put(%s, %s) -> %s", in.Key, in.Value, res)
		case opCAS:
			return fmt.Sprintf("cas(%s, %s -> %s) -> %s", in.Key, in.Expect, in.Value, res)
		default:
			return fmt.Sprintf("delete(%s) -> %s", in.Key, res)
		}
	},
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(absent)"
		}
		return state.(string)
	},
}
