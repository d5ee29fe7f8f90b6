package migratetest

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// TestBulkFixture: the sample plus small messages split between INBOX and
// Bulk, and one message per large size in Large, each carrying its
// payload; the same arguments give the same bytes.
func TestBulkFixture(t *testing.T) {
	fx, payloads := BulkFixture(5, 500, 1000, 70000)
	again, _ := BulkFixture(5, 500, 1000, 70000)
	if want := Sample().Count() + 5 + 2; fx.Count() != want {
		t.Fatalf("%d messages, want %d", fx.Count(), want)
	}
	byPath := map[string]FixtureFolder{}
	for _, f := range fx.Folders {
		byPath[strings.Join(f.Path, "/")] = f
	}
	if n := len(byPath["Bulk"].Messages); n != 2 {
		t.Errorf("%d messages in Bulk, want 2 (every other one)", n)
	}
	large := byPath["Large"].Messages
	if len(large) != 2 || len(payloads) != 2 {
		t.Fatalf("%d large messages, %d payloads; want 2 and 2", len(large), len(payloads))
	}
	for i, size := range []int{1000, 70000} {
		m := large[i]
		p := payloads[m.MessageID()]
		if len(p) != size {
			t.Errorf("payload of %s: %d bytes, want %d", m.MessageID(), len(p), size)
		}
		flat := bytes.ReplaceAll(m.Raw, []byte("\r\n"), nil)
		if !bytes.Contains(flat, []byte(base64.StdEncoding.EncodeToString(p))) {
			t.Errorf("%s does not carry its payload", m.MessageID())
		}
	}
	small, _ := BulkMessage(100, 500, 0)
	if len(small) < 500 {
		t.Errorf("a small message with pad 500 has %d bytes", len(small))
	}
	for i, f := range fx.Folders {
		for j, m := range f.Messages {
			if !bytes.Equal(m.Raw, again.Folders[i].Messages[j].Raw) {
				t.Fatalf("%s message %d differs between two calls", strings.Join(f.Path, "/"), j)
			}
		}
	}
}
