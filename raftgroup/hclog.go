package raftgroup

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter sends hashicorp/raft's hclog output to slog, so a node has one log
// stream. Raft's own level floor (minLevel) keeps its chatty INFO lines out by default.
type hclogAdapter struct {
	l        *slog.Logger
	name     string
	minLevel hclog.Level
	args     []any
}

// NewHCLogger adapts l for hashicorp/raft; records below min are dropped.
func NewHCLogger(l *slog.Logger, min hclog.Level) hclog.Logger {
	return &hclogAdapter{l: l, minLevel: min}
}

func toSlog(level hclog.Level) slog.Level {
	switch {
	case level <= hclog.Debug:
		return slog.LevelDebug
	case level == hclog.Info:
		return slog.LevelInfo
	case level == hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level < a.minLevel {
		return
	}
	all := append(append([]any{}, a.args...), args...)
	if a.name != "" {
		all = append(all, "component", a.name)
	}
	a.l.Log(context.Background(), toSlog(level), msg, all...)
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }
func (a *hclogAdapter) IsTrace() bool                 { return a.minLevel <= hclog.Trace }
func (a *hclogAdapter) IsDebug() bool                 { return a.minLevel <= hclog.Debug }
func (a *hclogAdapter) IsInfo() bool                  { return a.minLevel <= hclog.Info }
func (a *hclogAdapter) IsWarn() bool                  { return a.minLevel <= hclog.Warn }
func (a *hclogAdapter) IsError() bool                 { return a.minLevel <= hclog.Error }
func (a *hclogAdapter) ImpliedArgs() []any            { return a.args }
func (a *hclogAdapter) Name() string                  { return a.name }
func (a *hclogAdapter) SetLevel(level hclog.Level)    { a.minLevel = level }
func (a *hclogAdapter) GetLevel() hclog.Level         { return a.minLevel }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.args = append(append([]any{}, a.args...), args...)
	return &c
}

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return a.StandardLogger(opts).Writer()
}
