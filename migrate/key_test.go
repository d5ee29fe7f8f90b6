package migrate_test

import (
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

// TestTargetKeyUnambiguous: a folder whose name holds "/" (or "\") and
// the path its name seems to spell never share a key, so the Engine never
// merges them.
func TestTargetKeyUnambiguous(t *testing.T) {
	for _, c := range []struct {
		path []string
		key  string
	}{
		{[]string{"Inbox"}, "Inbox"},
		{[]string{"a", "b"}, "a/b"},
		{[]string{"a/b"}, `a\/b`},
		{[]string{`a\`, "b"}, `a\\/b`},
		{[]string{`a\/b`}, `a\\\/b`},
	} {
		if got := (migrate.Target{Path: c.path}).Key(); got != c.key {
			t.Errorf("Key of %q = %q, want %q", c.path, got, c.key)
		}
	}
	seen := map[string][]string{}
	for _, p := range [][]string{{"a", "b"}, {"a/b"}, {`a\`, "b"}, {`a\/b`}, {`a\`, `/b`}, {"a", "", "b"}, {"a//b"}} {
		k := migrate.Target{Path: p}.Key()
		if q, dup := seen[k]; dup {
			t.Errorf("%q and %q share the key %q", q, p, k)
		}
		seen[k] = p
	}
}
