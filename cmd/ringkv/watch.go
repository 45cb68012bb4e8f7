package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// cmdWatch: ringkv watch [PREFIX]: print every put and delete under PREFIX as it is
// applied, until interrupted. It follows the node's SSE stream (GET /kv?prefix=P&
// watch=true) and, when the stream ends with an error event or the connection breaks,
// reconnects to the next --addr node with the last event id, so nothing is lost or
// repeated across node restarts. Exit 2 when the cursor is older than the history kept
// (410: list again), on a refused request, or when no node answered for --give-up.
func cmdWatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("watch", "[PREFIX]", stdout, stderr)
	since := c.fs.String("since", "", "start after this cursor (a listing's cursor or an event's id) instead of now")
	prev := c.fs.Bool("prev", false, "show each change's previous value")
	giveUp := c.fs.Duration("give-up", time.Minute, "exit when no --addr node answered for this long (0: never)")
	c.fs.Lookup("addr").Usage = "node HTTP address(es) (host:port or URL), comma-separated: the watch moves to the next when one fails"
	c.fs.Lookup("timeout").Usage = "how long to wait for a node to answer a (re)connection"
	args, err := c.parse(args, getenv, 0, 1)
	if err != nil {
		return err
	}
	w := &watcher{c: c, prev: *prev, giveUp: *giveUp, lastID: *since}
	if len(args) == 1 {
		w.prefix = args[0]
	}
	for _, a := range strings.Split(c.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if err := c.conn.checkAddr(a); err != nil {
				return c.usageError(err.Error())
			}
			w.bases = append(w.bases, c.conn.base(a))
		}
	}
	if len(w.bases) == 0 {
		return c.usageError("--addr names no node")
	}
	t, err := c.conn.transport()
	if err != nil {
		return c.usageError(err.Error())
	}
	// No overall timeout: a watch lasts. A node that accepts but does not answer is
	// given up on after --timeout.
	t.ResponseHeaderTimeout = c.timeout
	w.hc = &http.Client{Transport: t}
	return w.run(ctx)
}

// watcher is one `ringkv watch`: where it reads and how far it got.
type watcher struct {
	c      *clientCmd
	hc     *http.Client
	bases  []string
	prefix string
	prev   bool
	giveUp time.Duration
	lastID string // the last event id seen: where a reconnection resumes
}

// Backoff between rounds of the --addr nodes that all failed.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 2 * time.Second
)

func (w *watcher) run(ctx context.Context) error {
	failingSince := time.Time{} // when the nodes started failing; zero while one serves
	backoff := watchRetryMin
	for i := 0; ; i = (i + 1) % len(w.bases) {
		base := w.bases[i]
		served, err := w.stream(ctx, base)
		if ctx.Err() != nil {
			return nil // interrupted: a watch ends this way
		}
		var refused *watchRefused
		if errors.As(err, &refused) {
			return w.c.failed(refused.status, refused.body)
		}
		fmt.Fprintf(w.c.stderr, "ringkv watch: %s: %v; reconnecting\n", base, err)
		if served {
			failingSince, backoff = time.Time{}, watchRetryMin
			continue // at once, to the next node
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if w.giveUp > 0 && time.Since(failingSince) > w.giveUp {
			fmt.Fprintf(w.c.stderr, "ringkv watch: no node answered for %s; giving up (resume with --since %s)\n", w.giveUp, w.lastID)
			return exitCode(2)
		}
		if i == len(w.bases)-1 { // a whole round failed: wait before the next
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, watchRetryMax)
		}
	}
}

// watchRefused is an answer that reconnecting elsewhere would not change (400, 401,
// 403, 404, 410): the watch ends with it.
type watchRefused struct {
	status int
	body   []byte
}

func (e *watchRefused) Error() string { return fmt.Sprintf("%d", e.status) }

// stream follows one node's stream until it ends; served says it delivered the stream
// (the node answered 200), so the next node is tried at once.
func (w *watcher) stream(ctx context.Context, base string) (served bool, err error) {
	q := url.Values{"prefix": {w.prefix}, "watch": {"true"}}
	if w.prev {
		q.Set("prev", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/kv?"+q.Encode(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if w.lastID != "" {
		req.Header.Set("Last-Event-ID", w.lastID)
	}
	if w.c.conn.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.c.conn.token)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
			return false, &watchRefused{status: resp.StatusCode, body: body}
		}
		return false, fmt.Errorf("%s %s", resp.Status, bytes.TrimSpace(body))
	}
	return true, w.readEvents(resp.Body)
}

// sseEvent is one Server-Sent Event as the stream carries it.
type sseEvent struct{ id, kind, data string }

// readEvents prints the stream's changes until it ends: an error event or the end of
// the body is an error (a watch does not end by itself).
func (w *watcher) readEvents(body io.Reader) error {
	r := bufio.NewReader(body)
	var e sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				err = errors.New("the stream ended")
			}
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a blank line ends an event; ": keepalive" is a comment
			if line != "" {
				continue
			}
			if err := w.handle(e); err != nil {
				return err
			}
			e = sseEvent{}
		case "id":
			e.id = value
		case "event":
			e.kind = value
		case "data":
			e.data += value
		}
	}
}

// watchEvent is an event's data (openapi.yaml's WatchEvent, and the error event's).
type watchEvent struct {
	Type        string  `json:"type"`
	Key         string  `json:"key"`
	KeyBase64   *string `json:"key_base64"`
	Value       *string `json:"value"`
	ValueBase64 *[]byte `json:"value_base64"`
	Prev        *struct {
		Value       *string `json:"value"`
		ValueBase64 *[]byte `json:"value_base64"`
	} `json:"prev"`
	Error string `json:"error"`
}

// handle prints a change and remembers its id; an error event ends the stream.
func (w *watcher) handle(e sseEvent) error {
	if e.kind == "" {
		return nil
	}
	if e.kind == "error" {
		var ev watchEvent
		_ = json.Unmarshal([]byte(e.data), &ev)
		return fmt.Errorf("the node ended the watch: %s", ev.Error)
	}
	if e.kind != "put" && e.kind != "delete" {
		if e.id != "" { // progress: the cursor moved with no change to show
			w.lastID = e.id
		}
		return nil
	}
	if w.c.output == "json" {
		if err := w.printJSON(e); err != nil {
			return err
		}
	} else if err := w.printText(e); err != nil {
		return err
	}
	w.lastID = e.id
	return nil
}

// printJSON writes the event's data as one line, with its id as "cursor".
func (w *watcher) printJSON(e sseEvent) error {
	d := json.NewDecoder(strings.NewReader(e.data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return fmt.Errorf("an event's data is not JSON: %w", err)
	}
	m["cursor"] = e.id
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w.c.stdout, "%s\n", b)
	return err
}

// printText writes `put KEY=VALUE` or `delete KEY`, with `(was VALUE)` under --prev;
// keys and values that are not printable text are quoted or shown as hex (showKey,
// showValue).
func (w *watcher) printText(e sseEvent) error {
	var ev watchEvent
	if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
		return fmt.Errorf("an event's data is not JSON: %w", err)
	}
	key := ev.Key
	if ev.KeyBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*ev.KeyBase64)
		if err != nil {
			return fmt.Errorf("an event's key_base64: %w", err)
		}
		key = string(b)
	}
	line := e.kind + " " + showKey(key)
	if e.kind == "put" {
		line += "=" + showValue(ev.Value, ev.ValueBase64)
	}
	if w.prev && ev.Prev != nil {
		line += " (was " + showValue(ev.Prev.Value, ev.Prev.ValueBase64) + ")"
	}
	_, err := fmt.Fprintln(w.c.stdout, line)
	return err
}
