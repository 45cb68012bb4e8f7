package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// Helpers of the backup tests (backup_test.go).

// escapeKey path-escapes every byte of a key, so any bytes make a /kv/{key} path.
func escapeKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		fmt.Fprintf(&b, "%%%02X", key[i])
	}
	return b.String()
}

// bulkClient is a plain keep-alive client for loading many keys fast (the validating
// client checks every answer against the spec, which the other tests do).
var bulkClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

// putRaw writes key=value through url, retrying answers that say nothing was done
// (503 without an unknown outcome) until the deadline; it returns the status.
func putRaw(ctx context.Context, url, key string, value []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url+"/kv/"+escapeKey(key), bytes.NewReader(value))
	if err != nil {
		return 0, err
	}
	resp, err := bulkClient.Do(req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, fmt.Errorf("PUT %q: %s %s", key, resp.Status, body)
	}
	return resp.StatusCode, nil
}

// loadKeys writes every key of kv through the nodes at urls with conc writers,
// retrying each failed write (the same value, so a retried write is harmless).
func loadKeys(t *testing.T, urls []string, kv map[string][]byte, conc int) {
	t.Helper()
	keys := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				deadline := time.Now().Add(30 * time.Second)
				for {
					_, err := putRaw(context.Background(), urls[w%len(urls)], k, kv[k])
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						failed.Store(err)
						break
					}
					time.Sleep(50 * time.Millisecond) // back off before retrying a refused write
				}
			}
		}()
	}
	for k := range kv {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("loading keys: %v", err)
	}
}

// stored is one key as a node answers it.
type stored struct {
	value                      string
	version, createIdx, modIdx int64
	etag                       string
}

// dumpKeys lists every key of the cluster at url with its value and indexes, and
// reads each key's ETag (HEAD): the state a backup must carry, key by key.
func dumpKeys(t *testing.T, url string) map[string]stored {
	t.Helper()
	out := map[string]stored{}
	cl := api(t, url)
	limit, cursor := 200, ""
	for {
		params := &openapi.ListKeysParams{Limit: &limit}
		if cursor != "" {
			params.Cursor = &cursor
		}
		var page *openapi.KeyList
		eventually(t, 30*time.Second, "a page of the listing", func() error {
			r, err := cl.ListKeysWithResponse(context.Background(), params)
			if err != nil {
				return err
			}
			if r.JSON200 == nil {
				return fmt.Errorf("list: %s %s", r.Status(), r.Body)
			}
			page = r.JSON200
			return nil
		})
		for _, kv := range page.Items {
			out[kv.RawKey()] = stored{value: valueOf(&kv), version: kv.Version, createIdx: kv.CreateIndex, modIdx: kv.ModIndex}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	keys := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				// A 503 (a leader moving) is retried, as a client would.
				var resp *http.Response
				var err error
				for deadline := time.Now().Add(20 * time.Second); ; {
					resp, err = bulkClient.Head(url + "/kv/" + escapeKey(k))
					if err != nil || resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
						break
					}
					resp.Body.Close()
					time.Sleep(50 * time.Millisecond) // back off before retrying a refused read
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Errorf("HEAD %q: %v %v", k, resp, err))
					continue
				}
				resp.Body.Close()
				mu.Lock()
				s := out[k]
				s.etag = resp.Header.Get("ETag")
				out[k] = s
				mu.Unlock()
			}
		}()
	}
	all := make([]string, 0, len(out))
	for k := range out {
		all = append(all, k)
	}
	for _, k := range all {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	return out
}

// runCLI runs the binary with args and returns its output and exit status.
func runCLI(t *testing.T, bin string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return o.String(), e.String(), status
}

// startRestoredNode starts `ringkv serve` on a restored data dir (the new cluster's
// first node) as proc i of a new cluster and waits until it is ready.
func startRestoredNode(t *testing.T, bin, dir, dataDir string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: dir, bin: bin, ports: portMap{}}
	httpAddr, raftAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	c.procs = append(c.procs, &proc{args: []string{"serve", "--id", "node1", "--data-dir", dataDir, "--http-addr", httpAddr, "--raft-addr", raftAddr},
		httpURL: "http://" + httpAddr, logPath: filepath.Join(dir, "restored-node1.log")})
	c.start(0)
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	c.waitReady(0)
	return c
}

// join starts one more node joining c.
func (c *cluster) join(id string) {
	c.t.Helper()
	httpAddr, raftAddr := "127.0.0.1:"+freePort(c.t), "127.0.0.1:"+freePort(c.t)
	seed := strings.TrimPrefix(c.procs[0].httpURL, "http://")
	c.procs = append(c.procs, &proc{args: []string{"serve", "--id", id, "--data-dir", filepath.Join(c.dir, "joined-"+id),
		"--http-addr", httpAddr, "--raft-addr", raftAddr, "--join", seed},
		httpURL: "http://" + httpAddr, logPath: filepath.Join(c.dir, "joined-"+id+".log")})
	c.start(len(c.procs) - 1)
	c.waitReady(len(c.procs) - 1)
}

// noFile fails unless path does not exist.
func noFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (err %v); a failed backup or restore must leave nothing there", path, err)
	}
}

// pausingProxy forwards one TCP connection at a time to target; once more than
// pauseAfter bytes of answer have passed it forwards no more until released, and when
// the target's side ends it cuts the client's (a reset, as a dead node's would look).
type pausingProxy struct {
	ln         net.Listener
	target     string
	pauseAfter int64
	paused     chan struct{} // closed once the threshold is passed
	release    chan struct{}
	once       sync.Once
}

func newPausingProxy(t *testing.T, target string, pauseAfter int64) *pausingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pausingProxy{ln: ln, target: target, pauseAfter: pauseAfter, paused: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.Release() })
	go p.serve()
	return p
}

func (p *pausingProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Release lets the answer flow again.
func (p *pausingProxy) Release() { p.once.Do(func() { close(p.release) }) }

func (p *pausingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *pausingProxy) handle(client net.Conn) {
	defer client.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, client) }()
	buf := make([]byte, 32<<10)
	var passed int64
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			if passed += int64(n); passed > p.pauseAfter {
				select {
				case <-p.paused:
				default:
					close(p.paused)
				}
				<-p.release
			}
		}
		if err != nil {
			if tc, ok := client.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not a clean end
			}
			return
		}
	}
}
