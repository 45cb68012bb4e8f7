package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Network partitions between processes on one machine: every node runs under its own
// user id, and iptables rules in a chain of the test's own drop the packets one node's
// user sends to another node's ports (owner match in OUTPUT). Both directions of a
// cut are dropped, so established connections stall as on a real network; the test
// client (root) still reaches every node, which is what lets a test read through a
// deposed leader. Needs root and iptables, as CI has.

const nodeUIDBase = 41000

// firewall is the test's iptables chain.
type firewall struct {
	t     *testing.T
	chain string
	c     *cluster
}

func canPartition() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("no iptables (apt-get install iptables)")
	}
	return nil
}

// requirePartitions skips, loudly, where the machine cannot cut traffic.
func requirePartitions(t *testing.T) {
	t.Helper()
	if err := canPartition(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("partition tests need root and iptables, as CI has: %v", err)
		}
		t.Skipf("\n\n*** SKIPPED: cannot partition the network here (%v): the partition tests did not run ***\n", err)
	}
}

func ipt(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func newFirewall(t *testing.T, c *cluster) *firewall {
	t.Helper()
	f := &firewall{t: t, chain: fmt.Sprintf("RINGKV%d", os.Getpid()%100000), c: c}
	_ = f.remove() // a chain left by a crashed run of the same pid
	if err := ipt("-N", f.chain); err != nil {
		t.Fatal(err)
	}
	if err := ipt("-I", "OUTPUT", "-j", f.chain); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.remove(); err != nil {
			t.Errorf("removing the test's iptables chain: %v", err)
		}
	})
	return f
}

func (f *firewall) remove() error {
	for ipt("-D", "OUTPUT", "-j", f.chain) == nil {
	}
	_ = ipt("-F", f.chain)
	return ipt("-X", f.chain)
}

// cut drops everything node a's process sends to node b's ports, and the reverse.
func (f *firewall) cut(a, b int) {
	f.t.Helper()
	for _, pair := range [][2]int{{a, b}, {b, a}} {
		from, to := f.c.procs[pair[0]], f.c.procs[pair[1]]
		for _, port := range to.ports() {
			if err := ipt("-A", f.chain, "-p", "tcp", "-m", "owner", "--uid-owner", fmt.Sprint(from.uid),
				"-d", "127.0.0.1", "--dport", port, "-j", "DROP"); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

// isolate cuts node i from every other node.
func (f *firewall) isolate(i int) {
	for j := range f.c.procs {
		if j != i {
			f.cut(i, j)
		}
	}
}

// heal removes every cut.
func (f *firewall) heal() {
	f.t.Helper()
	if err := ipt("-F", f.chain); err != nil {
		f.t.Fatal(err)
	}
}

// ports returns the node's HTTP and cluster ports, from its command line.
func (p *proc) ports() []string {
	var out []string
	for i, a := range p.args {
		if (a == "--http-addr" || a == "--raft-addr") && i+1 < len(p.args) {
			v := p.args[i+1]
			out = append(out, v[strings.LastIndex(v, ":")+1:])
		}
	}
	return out
}

// runAs makes node processes run under their own user ids, owning their data dirs.
func (c *cluster) runAs() {
	c.separateUsers = true
	// The binary, the working dir and the directories above them must be reachable
	// by those users.
	for _, start := range []string{c.bin, c.dir} {
		for d := start; d != "/" && d != "."; d = parentDir(d) {
			if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 != 0o005 {
				_ = os.Chmod(d, st.Mode().Perm()|0o005)
			}
		}
	}
}

func parentDir(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func credential(uid int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
}
