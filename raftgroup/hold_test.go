package raftgroup

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHoldWrites: a held group's new writes wait until the hold is released, a second
// hold is refused, a view opened in the hold's term sees none of the held writes, and
// release says the hold was still in place.
func TestHoldWrites(t *testing.T) {
	g := startSingle(t)
	ctx := context.Background()
	put := func(v string) error {
		_, err := g.Propose(ctx, (&KVCommand{Op: OpPut, Partition: 2, Key: []byte("k"), Value: []byte(v)}).Encode())
		return err
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	term, release, err := g.HoldWrites()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.HoldWrites(); !errors.Is(err, ErrHeld) {
		t.Fatalf("a second hold: %v, want ErrHeld", err)
	}
	done := make(chan error, 1)
	go func() { done <- put("held") }()
	select {
	case err := <-done:
		t.Fatalf("a write went through the hold (%v)", err)
	case <-time.After(300 * time.Millisecond): // the write must still be waiting: this is the observation window
	}
	view, err := g.OpenReadViewInTerm(ctx, term)
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	_ = view.Scan(func(k, v []byte) error { r, _ := SnapshotRecord(v); seen = string(r.Value); return nil })
	view.Close()
	if seen != "before" {
		t.Fatalf("the view holds %q, want the value written before the hold", seen)
	}
	if !release() {
		t.Fatal("release says the hold had already ended")
	}
	if err := <-done; err != nil {
		t.Fatalf("the held write after release: %v", err)
	}
	if release() {
		t.Fatal("a second release says it released the hold")
	}
	if _, err := g.OpenReadViewInTerm(ctx, term+1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a view in another term: %v, want ErrNotLeader", err)
	}
}

// TestHoldWritesLeadershipLostWhileRaising: leadership is lost between HoldWrites'
// first check and the raised hold. HoldWrites answers ErrNotLeader and the hold is
// gone: the next hold is taken and writes go through (it once released the hold with
// its own lock held, and the group's writes hung for good).
func TestHoldWritesLeadershipLostWhileRaising(t *testing.T) {
	g := startSingle(t)
	g.hold.stillLeads = func(uint64) bool { return false }
	answered := make(chan error, 1)
	go func() {
		_, _, err := g.HoldWrites()
		answered <- err
	}()
	select {
	case err := <-answered:
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("HoldWrites with the leadership lost: %v, want ErrNotLeader", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("HoldWrites hung when leadership was lost while it raised the hold")
	}
	g.hold.stillLeads = nil
	_, release, err := g.HoldWrites()
	if err != nil {
		t.Fatalf("a hold after the failed one: %v", err)
	}
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := g.Propose(ctx, (&KVCommand{Op: OpPut, Partition: 2, Key: []byte("k"), Value: []byte("v")}).Encode()); err != nil {
		t.Fatalf("a write after the holds: %v", err)
	}
	// The failed hold's time bound passes harmlessly (its timer once called the nil
	// release the failed return left, and panicked).
	time.Sleep(MaxWriteHold + 200*time.Millisecond) // the bound is the condition
}

// TestHoldBudget: holds of a group take at most MaxWriteHold of writes' time per
// holdWindow, however often they are raised (the trial stalled writes for good by
// raising a new one every 5 s); a hold is cut to what is left of the budget.
func TestHoldBudget(t *testing.T) {
	g := startSingle(t)
	g.hold.mu.Lock()
	g.hold.window, g.hold.spent = time.Now(), MaxWriteHold-300*time.Millisecond // most of it spent
	g.hold.mu.Unlock()
	_, release, err := g.HoldWrites()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := g.Propose(ctx, (&KVCommand{Op: OpPut, Partition: 2, Key: []byte("k"), Value: []byte("v")}).Encode()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("a write waited %s behind a hold with 300 ms of budget left", waited)
	}
	if release() {
		t.Fatal("the hold was still in place after its budget ran out")
	}
	if _, _, err := g.HoldWrites(); !errors.Is(err, ErrHoldBudget) {
		t.Fatalf("a hold with the budget spent: %v, want ErrHoldBudget", err)
	}
}
