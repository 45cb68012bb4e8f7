package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// started is when the write of one sequence number began.
type started struct {
	seq int
	at  time.Time
}

// TestConsistentBackupUnderWriteLoad: `ringkv backup --consistent` under 64 writing
// clients is one cut of the whole cluster. Each client owns two keys in different
// groups and writes them in turn with the same sequence number, the second only once
// the first is acknowledged (A=n, then B=n, then A=n+1...). In the restored backup,
// for every client:
//   - each key holds at least its last write acknowledged before the backup began;
//   - neither holds a write that began after the backup ended;
//   - B <= A <= B+1: the backup never holds a write without one acknowledged before it
//     began (a per-group cut, taken group after group, can hold B=n without A=n).
func TestConsistentBackupUnderWriteLoad(t *testing.T) {
	// "false" here makes the test fail (tens of pairs out of order): it can see a cut
	// that is not one.
	consistentFlag := "true"
	c := startProcCluster(t, 3)
	urls := []string{c.procs[0].httpURL, c.procs[1].httpURL, c.procs[2].httpURL}
	const clients = 64
	type client struct {
		a, b string
		// per key: acknowledged sequence numbers with their ack time, and the start
		// time of every write
		ackedA, ackedB []int
		ackAtA, ackAtB []time.Time
		startA, startB []started // the first start of each sequence's write
	}
	cls := make([]*client, clients)
	for i := range cls {
		cl := &client{a: fmt.Sprintf("pair/%02d/a", i)}
		groupOf := func(k string) string {
			t.Helper()
			req, _ := http.NewRequest(http.MethodPut, urls[0]+"/kv/"+escapeKey(k), strings.NewReader("0"))
			var g string
			eventually(t, 20*time.Second, "PUT "+k, func() error {
				resp, err := bulkClient.Do(req.Clone(context.Background()))
				if err != nil {
					return err
				}
				resp.Body.Close()
				if g = resp.Header.Get("X-Ringkv-Group"); resp.StatusCode/100 != 2 || g == "" {
					return fmt.Errorf("PUT %s: %s", k, resp.Status)
				}
				return nil
			})
			return g
		}
		ga := groupOf(cl.a)
		for j := 0; cl.b == ""; j++ {
			if k := fmt.Sprintf("pair/%02d/b%d", i, j); groupOf(k) != ga {
				cl.b = k
			}
		}
		cls[i] = cl
	}
	var mu sync.Mutex
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, cl := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			write := func(key string, seq int, starts *[]started, acked *[]int, ackAt *[]time.Time) bool {
				mu.Lock()
				*starts = append(*starts, started{seq: seq, at: time.Now()})
				mu.Unlock()
				for ctx.Err() == nil {
					if _, err := putRaw(ctx, urls[(i+seq)%3], key, []byte(strconv.Itoa(seq))); err == nil {
						mu.Lock()
						*acked, *ackAt = append(*acked, seq), append(*ackAt, time.Now())
						mu.Unlock()
						return true
					}
				}
				return false
			}
			for seq := 1; ; seq++ {
				if !write(cl.a, seq, &cl.startA, &cl.ackedA, &cl.ackAtA) || !write(cl.b, seq, &cl.startB, &cl.ackedB, &cl.ackAtB) {
					return
				}
			}
		}()
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	eventually(t, 60*time.Second, "every client's pair written 3 times", func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, cl := range cls {
			if len(cl.ackedB) < 3 {
				return fmt.Errorf("%s: %d writes acknowledged", cl.b, len(cl.ackedB))
			}
		}
		return nil
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "consistent.rkbackup")
	began := time.Now()
	out, errOut, status := runCLI(t, c.bin, "backup", "--consistent="+consistentFlag, file, "--addr", urls[1])
	ended := time.Now()
	if status != 0 {
		t.Fatalf("ringkv backup --consistent: status %d\n%s%s", status, out, errOut)
	}
	stop()
	wg.Wait()
	if text, _, _ := runCLI(t, c.bin, "backup", "--verify", file); consistentFlag == "true" && !strings.Contains(text, "one consistent cut") {
		t.Fatalf("--verify does not say the backup is one consistent cut:\n%s", text)
	}
	restored := filepath.Join(dir, "restored")
	if _, errOut, status := runCLI(t, c.bin, "restore", file, "--data-dir", restored); status != 0 {
		t.Fatalf("ringkv restore: %d %s", status, errOut)
	}
	got := dumpKeys(t, startRestoredNode(t, c.bin, dir, restored).procs[0].httpURL)
	// lastAckedBefore is the last sequence acknowledged before at; maxStartedBefore the
	// highest sequence whose write started before at (writes go in order, one at a time).
	lastAckedBefore := func(acked []int, ackAt []time.Time, at time.Time) int {
		n := 0
		for i, s := range acked {
			if ackAt[i].Before(at) {
				n = s
			}
		}
		return n
	}
	// lastStartedBefore is the highest sequence whose write began before at.
	lastStartedBefore := func(starts []started, at time.Time) int {
		n := 0
		for _, st := range starts {
			if st.at.Before(at) {
				n = st.seq
			}
		}
		return n
	}
	total := 0
	for _, cl := range cls {
		total += len(cl.ackedA) + len(cl.ackedB)
		a, _ := strconv.Atoi(got[cl.a].value)
		b, _ := strconv.Atoi(got[cl.b].value)
		if wantA := lastAckedBefore(cl.ackedA, cl.ackAtA, began); a < wantA {
			t.Errorf("%s: backup holds %d; %d was acknowledged before the backup began", cl.a, a, wantA)
		}
		if wantB := lastAckedBefore(cl.ackedB, cl.ackAtB, began); b < wantB {
			t.Errorf("%s: backup holds %d; %d was acknowledged before the backup began", cl.b, b, wantB)
		}
		if limit := lastStartedBefore(cl.startA, ended); a > limit {
			t.Errorf("%s: backup holds %d, a write that began after the backup ended (the last begun before: %d)", cl.a, a, limit)
		}
		if limit := lastStartedBefore(cl.startB, ended); b > limit {
			t.Errorf("%s: backup holds %d, a write that began after the backup ended (the last begun before: %d)", cl.b, b, limit)
		}
		if !(b <= a && a <= b+1) {
			t.Errorf("client pair %s=%d, %s=%d: not one cut (want B <= A <= B+1)", cl.a, a, cl.b, b)
		}
	}
	t.Logf("%d acknowledged writes by %d clients; the consistent backup took %s", total, clients, ended.Sub(began).Round(time.Millisecond))
}
