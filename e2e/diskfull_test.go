package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// smallDisk mounts a tmpfs of size bytes and returns its path; it is unmounted when
// the test ends (after its nodes are killed: cleanups run last-registered first).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("the disk-full test mounts a tmpfs and needs root, as CI has")
		}
		t.Skipf("\n\n*** SKIPPED: the disk-full test mounts a tmpfs and needs root: it did not run ***\n")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs: %v: %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fill writes a file of n bytes (real pages: tmpfs counts what is written).
func fill(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatalf("filler: %v", err)
		}
		n -= k
	}
}

// readiness returns /readyz's status ("ready", "degraded") and reasons.
func readiness(t *testing.T, url string) (int, string, []string) {
	resp, err := api(t, url).ReadyzWithResponse(context.Background())
	if err != nil {
		return 0, err.Error(), nil
	}
	if resp.JSON200 == nil {
		return resp.StatusCode(), string(resp.Body), nil
	}
	var reasons []string
	if resp.JSON200.Degraded != nil {
		reasons = *resp.JSON200.Degraded
	}
	return resp.StatusCode(), string(resp.JSON200.Status), reasons
}

func putValue(t *testing.T, url, key string, value []byte) (*openapi.PutKeyResponse, error) {
	return api(t, url).PutKeyWithBodyWithResponse(context.Background(), key, &openapi.PutKeyParams{}, "application/octet-stream", bytes.NewReader(value))
}

// TestFullDiskRefusesWritesAndRecovers: a node on a small tmpfs, its disk filled by
// another file, refuses writes with 507 before the disk is exhausted (it used to answer
// one 503 and die of SIGBUS inside Badger, and die again on restart), stays up and
// ready-but-degraded, serves every acknowledged write, survives a restart on the full
// disk, and takes writes again by itself once the filler is deleted.
func TestFullDiskRefusesWritesAndRecovers(t *testing.T) {
	disk := smallDisk(t, "64m")
	// The reserve must cover what the node still writes after it refuses: here a
	// raft-wal segment (preallocated 8 MiB at a time) and Badger's flushes.
	const reserve = 24 << 20
	c := startProcCluster(t, 1, "--data-dir", filepath.Join(disk, "node1"), "--groups", "1", "--partitions", "4",
		"--disk-reserve-bytes", fmt.Sprint(reserve))
	url := c.procs[0].httpURL
	if s, status, _ := readiness(t, url); s != http.StatusOK || status != "ready" {
		t.Fatalf("readyz before filling: %d %s", s, status)
	}

	// Leave the node 12 MiB above its reserve.
	filler := filepath.Join(disk, "filler")
	fill(t, filler, freeBytes(t, disk)-reserve-12<<20)
	t.Logf("free after the filler: %d bytes (reserve %d)", freeBytes(t, disk), reserve)

	value := bytes.Repeat([]byte("v"), 256<<10)
	acked := map[string]byte{}
	var refused *openapi.PutKeyResponse
	// Write until a write is refused while the node reports its disk full. A 507 may
	// come a little early (the node counts admitted writes until its next free-space
	// poll, every 100 ms, and counts them generously) and writes then resume; the node
	// must never run the disk out: the loop writes far more than the tmpfs holds.
	for i := 0; i < 400 && refused == nil; i++ {
		key := fmt.Sprintf("k%03d", i)
		value[0] = byte(i)
		eventually(t, 5*time.Second, "PUT "+key+" taken, or refused by a node that says its disk is full", func() error {
			resp, err := putValue(t, url, key, value)
			switch {
			case err != nil:
				t.Fatalf("PUT %s: %v (node log ends:\n%s)", key, err, c.lastLog(0))
			case resp.StatusCode() == http.StatusCreated:
				acked[key] = byte(i)
				return nil
			case resp.StatusCode() != http.StatusInsufficientStorage:
				t.Fatalf("PUT %s: %d %s (want 201 until the disk is full, then 507)", key, resp.StatusCode(), resp.Body)
			}
			if _, status, _ := readiness(t, url); status != "degraded" {
				return fmt.Errorf("507 from a node not (yet) saying its disk is full: %s", resp.Body)
			}
			refused = resp
			return nil
		})
	}
	if refused == nil {
		t.Fatalf("400 writes of 256 KiB on 12 MiB above the reserve never filled the disk")
	}
	free := freeBytes(t, disk)
	p := refused.ApplicationproblemJSON507
	if p == nil || p.Detail == nil || !strings.Contains(*p.Detail, "disk full") || refused.HTTPResponse.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("507 is not a problem saying the disk is full: %s", refused.Body)
	}
	t.Logf("refused after %d writes with %d bytes free (reserve %d): %s", len(acked), free, reserve, *p.Detail)
	if free < reserve/2 {
		t.Fatalf("writes were refused only at %d bytes free, below half the %d reserve", free, reserve)
	}

	checkDegradedAndReadable := func(when string) {
		t.Helper()
		if resp, err := api(t, url).HealthzWithResponse(context.Background()); err != nil || resp.StatusCode() != http.StatusOK {
			t.Fatalf("%s: healthz: %v %v", when, resp, err)
		}
		// The disk is at the reserve, within a write or so of it: writes are refused
		// (507), perhaps after one or two more fit (a restart or the value log's GC
		// may have given a little back). Never more than a few.
		for i := 0; ; i++ {
			key := fmt.Sprintf("more-%d-%d", len(acked), i)
			resp, err := putValue(t, url, key, value)
			if err != nil {
				t.Fatalf("%s: PUT %s: %v", when, key, err)
			}
			if resp.StatusCode() == http.StatusInsufficientStorage {
				break
			}
			if resp.StatusCode() != http.StatusCreated || i >= 4 {
				t.Fatalf("%s: a write on the full disk: %d %s (write %d)", when, resp.StatusCode(), resp.Body, i)
			}
			acked[key] = value[0]
		}
		eventually(t, 10*time.Second, when+": readyz degraded", func() error {
			s, status, reasons := readiness(t, url)
			if s != http.StatusOK || status != "degraded" || len(reasons) == 0 || !strings.Contains(reasons[0], "disk full") {
				return fmt.Errorf("%d %s %q", s, status, reasons)
			}
			return nil
		})
		for key, b := range acked {
			s, v := readAnswered(t, url, key)
			if s != http.StatusOK || len(v) != len(value) || v[0] != b {
				t.Fatalf("%s: acknowledged %s reads %d, %d bytes", when, key, s, len(v))
			}
		}
		eventually(t, 10*time.Second, when+": the dashboard's node page says the disk is full", func() error {
			resp, err := http.Get(url + "/ui/nodes/node1")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), `data-testid="node-disk-full"`) {
				return fmt.Errorf("%s: no node-disk-full alert", resp.Status)
			}
			return nil
		})
		m := metricsText(t, url)
		if !strings.Contains(m, "ringkv_disk_full 1") || !strings.Contains(m, `ringkv_disk_bytes{kind="state"}`) {
			t.Fatalf("%s: /metrics does not say the disk is full:\n%s", when, grepLines(m, "ringkv_disk"))
		}
	}
	checkDegradedAndReadable("full")

	// A restart on the full disk must come up (it used to die of SIGBUS again).
	c.kill(0)
	c.start(0)
	c.waitReady(0)
	checkDegradedAndReadable("restarted on the full disk")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes taken again once space is freed", func() error {
		resp, err := putValue(t, url, "after", value)
		if err != nil || resp.StatusCode() != http.StatusCreated {
			return fmt.Errorf("%v %v", resp, err)
		}
		return nil
	})
	eventually(t, 10*time.Second, "readyz ready once space is freed", func() error {
		if s, status, reasons := readiness(t, url); s != http.StatusOK || status != "ready" {
			return fmt.Errorf("%d %s %q", s, status, reasons)
		}
		return nil
	})
	select {
	case <-c.procs[0].exited:
		t.Fatalf("the node exited; its log ends:\n%s", c.lastLog(0))
	default:
	}
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFollowerWithAFullDiskFallsBehindAndCatchesUp: in a 3-node cluster, one node's
// disk fills (below half its reserve) while the others have room. The placement
// service moves the leadership of its groups to the others (a leader on a full disk
// refuses its group's writes with 507), the node stops appending and falls behind but
// stays up, the cluster keeps taking writes on the other two, and once space is freed
// the node catches up by itself, without a restart.
func TestFollowerWithAFullDiskFallsBehindAndCatchesUp(t *testing.T) {
	disk := smallDisk(t, "64m")
	const reserve = 24 << 20
	c := startProcCluster(t, 3, "--groups", "3", "--partitions", "6")
	// Move node3 onto the small disk.
	c.kill(2)
	moved := filepath.Join(disk, "node3")
	if out, err := exec.Command("cp", "-a", c.procs[2].dataDir(), moved).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	c.procs[2].args = append(c.procs[2].args, "--data-dir", moved, "--disk-reserve-bytes", fmt.Sprint(reserve))
	c.start(2)
	c.waitReady(2)
	c.waitReplicated()

	filler := filepath.Join(disk, "filler")
	fill(t, filler, freeBytes(t, disk)-(reserve/2-4<<20))
	t.Logf("node3's disk: %d bytes free, reserve %d", freeBytes(t, disk), reserve)
	eventually(t, 10*time.Second, "node3 notices its disk is full", func() error {
		if _, status, reasons := readiness(t, c.procs[2].httpURL); status != "degraded" {
			return fmt.Errorf("%s %q", status, reasons)
		}
		return nil
	})

	url1, url3 := c.procs[0].httpURL, c.procs[2].httpURL
	value := bytes.Repeat([]byte("w"), 64<<10)
	acked := map[string]byte{}
	began := time.Now()
	for i := 0; i < 60; i++ {
		key := fmt.Sprintf("f%02d", i)
		value[0] = byte(i)
		// A group led by node3 refuses (507) until its leader, unable to append,
		// steps down and another node is elected; then the write is taken.
		eventually(t, 20*time.Second, "PUT "+key+" taken by a leader with room", func() error {
			resp, err := putValue(t, url1, key, value)
			if err != nil {
				return err
			}
			if resp.StatusCode() != http.StatusCreated {
				return fmt.Errorf("%d %s", resp.StatusCode(), resp.Body)
			}
			return nil
		})
		acked[key] = byte(i)
	}
	t.Logf("60 writes taken in %v with node3's disk full", time.Since(began).Round(time.Millisecond))
	if resp, err := api(t, url3).HealthzWithResponse(context.Background()); err != nil || resp.StatusCode() != http.StatusOK {
		t.Fatalf("node3 healthz: %v %v; its log ends:\n%s", resp, err, c.lastLog(2))
	}
	for key, b := range acked { // through node3: forwarded to the leaders
		if s, v := readAnswered(t, url3, key); s != http.StatusOK || v[0] != b {
			t.Fatalf("acknowledged %s reads %d through node3", key, s)
		}
	}

	behind := 0
	for key := range acked {
		if s, _, _ := readStale(t, url3, key); s == http.StatusNotFound {
			behind++
		}
	}
	t.Logf("node3's own replicas lack %d of the %d writes while its disk is full", behind, len(acked))
	if behind == 0 {
		t.Fatalf("node3 appended every write on a disk below half its reserve")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "node3's own replicas catch up once space is freed", func() error {
		for key, b := range acked {
			s, v, err := readStale(t, url3, key)
			if err != nil || s != http.StatusOK || v[0] != b {
				return fmt.Errorf("stale read of %s on node3: %d %v", key, s, err)
			}
		}
		return nil
	})
	select {
	case <-c.procs[2].exited:
		t.Fatalf("node3 exited; its log ends:\n%s", c.lastLog(2))
	default:
	}
}
