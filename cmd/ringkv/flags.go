package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/ringkv/ringkv/raftgroup"
)

// envName is the environment variable that sets flag name: RINGKV_ and the name in
// upper case with dashes as underscores.
func envName(name string) string {
	return "RINGKV_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its environment
// variable, so flags win over the environment and the environment over defaults.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
			}
		}
	})
	return err
}

// listFlag collects a comma-separated or repeated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// uint64Flag is a flag.Value for uint64 (flag has Uint64Var, but this keeps the zero
// default printable as "default").
type uint64Flag struct{ v *uint64 }

func (u uint64Flag) String() string {
	if u.v == nil {
		return "0"
	}
	return strconv.FormatUint(*u.v, 10)
}

func (u uint64Flag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err == nil {
		*u.v = n
	}
	return err
}

// logStoreFlag is --log-store: bolt or wal.
type logStoreFlag struct{ v *raftgroup.LogStoreKind }

func (f logStoreFlag) String() string {
	if f.v == nil {
		return ""
	}
	return string(*f.v)
}

func (f logStoreFlag) Set(s string) error {
	k, err := raftgroup.ParseLogStoreKind(s)
	if err == nil {
		*f.v = k
	}
	return err
}

// historyFlag is --watch-history: a count of changes or a duration.
type historyFlag struct{ v *raftgroup.HistoryRetention }

func (f historyFlag) String() string {
	if f.v == nil {
		return ""
	}
	return f.v.String()
}

func (f historyFlag) Set(s string) error {
	r, err := raftgroup.ParseHistoryRetention(s)
	if err == nil {
		*f.v = r
	}
	return err
}
