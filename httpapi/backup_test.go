package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fakeBackup writes size bytes of 'b', then returns err.
type fakeBackup struct {
	size       int
	err        error // returned after size bytes (before any when size is 0)
	consistent bool
	calls      int
}

func (f *fakeBackup) WriteBackup(ctx context.Context, w io.Writer, consistent bool) error {
	f.calls++
	f.consistent = consistent
	for written := 0; written < f.size; written += 4096 {
		if _, err := w.Write(bytes.Repeat([]byte("b"), min(4096, f.size-written))); err != nil {
			return err
		}
	}
	return f.err
}

func (f *fakeBackup) WriteGroupSection(ctx context.Context, group uint32, cut string, w io.Writer) error {
	if group != 1 {
		return &NotLeaderError{Leader: "n2"}
	}
	_, err := io.WriteString(w, "section "+cut)
	return err
}
func (f *fakeBackup) HoldCut(context.Context, string, []uint32) error            { return nil }
func (f *fakeBackup) OpenCut(context.Context, string) (map[uint32]uint64, error) { return nil, nil }
func (f *fakeBackup) DropCut(string)                                             {}

// TestBackupStream: a backup is streamed as an octet-stream attachment; an error
// before its first byte is a problem with its status; an error after it cuts the
// connection, so the client cannot take the part it got for a whole backup; HEAD
// answers the headers without taking one; a group's section from a node that does not
// lead it is a not-leader 503.
func TestBackupStream(t *testing.T) {
	kv := &memKV{data: map[string]Value{}}
	for _, tc := range []struct {
		name   string
		path   string
		method string
		fake   fakeBackup
		status int
		body   int  // bytes expected, when the answer completes
		cut    bool // the body must end in an error
	}{
		{name: "whole", path: "/admin/backup", fake: fakeBackup{size: 100000}, status: 200, body: 100000},
		{name: "consistent", path: "/admin/backup?consistent=true", fake: fakeBackup{size: 10}, status: 200, body: 10},
		{name: "bad flag", path: "/admin/backup?consistent=maybe", status: 400},
		{name: "fails first", path: "/admin/backup", fake: fakeBackup{err: fmt.Errorf("%w: group 3 has no leader", ErrUnavailable)}, status: 503},
		{name: "fails midway", path: "/admin/backup", fake: fakeBackup{size: 1 << 20, err: errors.New("a node died")}, status: 200, cut: true},
		{name: "head", path: "/admin/backup", method: http.MethodHead, status: 200},
		{name: "section", path: "/internal/backup/groups/1?cut=c1", status: 200, body: len("section c1")},
		{name: "section elsewhere", path: "/internal/backup/groups/2", status: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := tc.fake
			srv := httptest.NewServer(New(Config{AllowedHosts: testHosts, KV: kv, Admin: fixedAdmin{}, Backup: &fake, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
			defer srv.Close()
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, readErr := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			switch {
			case tc.cut:
				if readErr == nil {
					t.Fatalf("a backup that failed midway read as complete (%d bytes)", len(body))
				}
			case resp.StatusCode >= 400:
				var p Problem
				if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Status != tc.status {
					t.Fatalf("error answered %q %s", resp.Header.Get("Content-Type"), body)
				}
			default:
				if readErr != nil || len(body) != tc.body {
					t.Fatalf("body of %d bytes (%v), want %d", len(body), readErr, tc.body)
				}
				if resp.Header.Get("Content-Type") != "application/octet-stream" {
					t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
				}
			}
			if method == http.MethodHead && fake.calls != 0 {
				t.Fatal("HEAD took a backup")
			}
			if tc.name == "consistent" && !fake.consistent {
				t.Fatal("consistent=true did not ask for a consistent backup")
			}
		})
	}
}
