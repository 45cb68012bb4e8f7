package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

// Backup is the backup side of a node, as the handlers need it.
type Backup interface {
	// WriteBackup streams a backup of the whole cluster to w (docs/BACKUP.md); with
	// consistent, of one cluster-wide cut. An error before anything was written is
	// answered as a problem; after, the stream is cut.
	WriteBackup(ctx context.Context, w io.Writer, consistent bool) error
	// WriteGroupSection streams one data group's section, read on its leader after a
	// read index; a *NotLeaderError, with nothing written, when this node does not lead.
	// With cut set, from the group's read view in that consistent cut.
	WriteGroupSection(ctx context.Context, group uint32, cut string, w io.Writer) error
	// HoldCut, OpenCut and DropCut are a consistent cut's phases on this node: hold
	// new writes on the groups it leads; open a read view of each and release them
	// (answering their applied indexes); drop what is left.
	HoldCut(ctx context.Context, cut string, groups []uint32) error
	OpenCut(ctx context.Context, cut string) (map[uint32]uint64, error)
	DropCut(cut string)
}

// backupWriteGrace is how long one write of a backup stream may take: the server's
// WriteTimeout bounds a whole response, which a backup outlasts, so the stream moves
// the deadline forward as it goes and only a reader that stops reading is cut.
const backupWriteGrace = 30 * time.Second

// minBackupRate is the slowest a backup stream may be read on average, once
// backupWriteGrace has passed: a reader that takes a trickle holds one of the node's
// maxBackupStreams and a read view pinning Badger's old versions (4 readers at 2 KiB/s
// kept every backup out for minutes). 64 KiB/s streams 1M keys of 100 B in 40 min.
const minBackupRate = 64 << 10

// errSlowReader cuts a stream read slower than minBackupRate.
var errSlowReader = fmt.Errorf("the backup was read slower than %d KiB/s", minBackupRate>>10)

// streamWriter starts a streamed octet-stream answer at its first byte, so that an
// error before it can still be answered as a problem.
type streamWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	header   func(http.Header)
	started  bool
	deadline time.Time
	began    time.Time
	written  int64
}

func (sw *streamWriter) Write(b []byte) (int, error) {
	if !sw.started {
		sw.started, sw.began = true, time.Now()
		sw.header(sw.w.Header())
		sw.w.WriteHeader(http.StatusOK)
	}
	if now := time.Now(); now.After(sw.deadline.Add(-backupWriteGrace / 2)) {
		if took := now.Sub(sw.began); took > backupWriteGrace && float64(sw.written) < minBackupRate*took.Seconds() {
			return 0, errSlowReader
		}
		sw.deadline = now.Add(backupWriteGrace)
		_ = sw.rc.SetWriteDeadline(sw.deadline)
	}
	n, err := sw.w.Write(b)
	sw.written += int64(n)
	return n, err
}

// maxBackupStreams bounds the backups and backup sections a node streams at once: each
// scans a whole group (a read view pinning Badger's old versions, and its reads).
const maxBackupStreams = 4

func (s *Server) stream(w http.ResponseWriter, r *http.Request, header func(http.Header), write func(io.Writer) error) {
	if s.backup == nil {
		writeError(w, r, s.log, fmt.Errorf("%w: backups are not served by this node", ErrNotFound))
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, r, s.log, fmt.Errorf("%w: this node is streaming %d backups or backup sections already; nothing was done, retry", ErrOverloaded, cap(s.streams)))
		return
	}
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), header: header}
	err := write(sw)
	switch {
	case err == nil:
	case !sw.started:
		writeError(w, r, s.log, err)
	default:
		// Part of the stream is out: cut the connection, so the reader sees it end
		// without its trailer rather than a complete-looking answer.
		s.log.Error("backup stream failed", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// getBackup: GET /admin/backup.
func (s *Server) getBackup(w http.ResponseWriter, r *http.Request) {
	name := "ringkv-" + time.Now().UTC().Format("20060102T150405Z") + ".rkbackup"
	header := func(h http.Header) {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
		h.Set("Cache-Control", "no-store")
		h.Set(nodeHeader, s.kv.NodeID())
	}
	if r.Method == http.MethodHead && s.backup != nil { // the headers, without reading the whole cluster
		header(w.Header())
		w.WriteHeader(http.StatusOK)
		return
	}
	consistent, err := boolParam(r.URL.Query(), "consistent")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.stream(w, r, header, func(w io.Writer) error { return s.backup.WriteBackup(r.Context(), w, consistent) })
}

// getGroupSection: GET /internal/backup/groups/{id}, one group's section for a node
// assembling a backup.
func (s *Server) getGroupSection(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 32)
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: group id %q", ErrBadRequest, chi.URLParam(r, "id")))
		return
	}
	s.stream(w, r, func(h http.Header) {
		h.Set("Content-Type", "application/octet-stream")
		h.Set(nodeHeader, s.kv.NodeID())
	}, func(w io.Writer) error {
		return s.backup.WriteGroupSection(r.Context(), uint32(id), r.URL.Query().Get("cut"), w)
	})
}

// holdCut: POST /internal/backup/cuts/{cut}/hold {"groups": [...]}.
func (s *Server) holdCut(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Groups []uint32 `json:"groups"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil || len(body.Groups) == 0 {
		writeError(w, r, s.log, fmt.Errorf("%w: want {\"groups\": [ids]}", ErrBadRequest))
		return
	}
	if err := s.backup.HoldCut(r.Context(), chi.URLParam(r, "cut"), body.Groups); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// openCut: POST /internal/backup/cuts/{cut}/open.
func (s *Server) openCut(w http.ResponseWriter, r *http.Request) {
	applied, err := s.backup.OpenCut(r.Context(), chi.URLParam(r, "cut"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := map[string]uint64{}
	for g, idx := range applied {
		out[strconv.FormatUint(uint64(g), 10)] = idx
	}
	writeJSON(w, http.StatusOK, map[string]any{"applied_index": out})
}

// dropCut: DELETE /internal/backup/cuts/{cut}.
func (s *Server) dropCut(w http.ResponseWriter, r *http.Request) {
	s.backup.DropCut(chi.URLParam(r, "cut"))
	w.WriteHeader(http.StatusNoContent)
}
