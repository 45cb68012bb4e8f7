package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeWithNoFlagsSurvivesRestarts is the README's first promise: `ringkv serve`
// with no flags is a single-node cluster on 127.0.0.1:8080 with its data in
// ./ringkv-data, the client commands find it with no --addr, and what was written
// survives a clean stop and a kill -9.
func TestServeWithNoFlagsSurvivesRestarts(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:7080"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("this test runs `ringkv serve` with no flags, which needs %s free: %v", addr, err)
		}
		l.Close()
	}
	c := &cluster{t: t, dir: t.TempDir(), bin: binary(t), ports: portMap{}}
	c.procs = []*proc{{args: []string{"serve"}, httpURL: "http://127.0.0.1:8080", logPath: filepath.Join(c.dir, "node.log")}}
	t.Cleanup(func() {
		c.kill(0)
		if t.Failed() {
			t.Logf("---- node log ----\n%s", c.lastLog(0))
		}
	})
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(c.bin, args...)
		cmd.Env = withoutRingkvEnv() // the defaults are what is tested
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ringkv %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	want := func(key, value string) {
		t.Helper()
		if got := strings.TrimSpace(cli("get", key)); got != value {
			t.Fatalf("ringkv get %s = %q, want %q", key, got, value)
		}
	}

	c.start(0)
	c.waitReady(0)
	cli("put", "hello", "world")
	if _, err := os.Stat(filepath.Join(c.dir, "ringkv-data")); err != nil {
		t.Fatalf("no ./ringkv-data after the first write: %v", err)
	}
	want("hello", "world")

	// A clean stop (SIGTERM, as Ctrl-C or docker stop) exits 0 and keeps the data.
	_ = c.procs[0].cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.procs[0].exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30 s of SIGTERM")
	}
	if code := c.procs[0].cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("serve exited %d on SIGTERM, want 0", code)
	}
	c.procs[0].cmd = nil
	c.start(0)
	c.waitReady(0)
	want("hello", "world")

	// kill -9 right after an acknowledged write: the write is there after restart.
	cli("put", "hello", "after-restart")
	c.kill(0)
	c.start(0)
	c.waitReady(0)
	want("hello", "after-restart")
}

// withoutRingkvEnv is the test's environment minus RINGKV_* settings.
func withoutRingkvEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RINGKV_") {
			env = append(env, kv)
		}
	}
	return env
}
