package main

import "testing"

// TestQuickstart runs the quickstart as a user would: it must migrate the
// whole sample mailbox and find nothing lost.
func TestQuickstart(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
