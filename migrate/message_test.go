package migrate_test

import (
	"slices"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

// SameFlags compares two flag lists as sets, ignoring case as IMAP does,
// and gives the same answer whichever list comes first.
func TestSameFlags(t *testing.T) {
	seen, flagged, answered := migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered
	for _, c := range []struct {
		name string
		a, b []migrate.Flag
		same bool
	}{
		{"both empty", nil, nil, true},
		{"nil and empty", nil, []migrate.Flag{}, true},
		{"empty and one flag", nil, []migrate.Flag{seen}, false},
		{"equal", []migrate.Flag{seen, flagged}, []migrate.Flag{seen, flagged}, true},
		{"another order", []migrate.Flag{seen, flagged, "Work"}, []migrate.Flag{"Work", flagged, seen}, true},
		{"system flags in another case", []migrate.Flag{`\SEEN`, `\flagged`}, []migrate.Flag{seen, flagged}, true},
		{"keywords in another case", []migrate.Flag{"$label1", "work"}, []migrate.Flag{"$Label1", "Work"}, true},
		{"one flag more", []migrate.Flag{seen}, []migrate.Flag{seen, flagged}, false},
		{"another flag", []migrate.Flag{seen, flagged}, []migrate.Flag{seen, answered}, false},
		{"a keyword is not the system flag of its name", []migrate.Flag{"Seen"}, []migrate.Flag{seen}, false},
		// Repeats change nothing: a flag list is a set.
		{"a flag repeated", []migrate.Flag{seen, seen}, []migrate.Flag{seen}, true},
		{"a flag repeated in another case", []migrate.Flag{seen, `\seen`}, []migrate.Flag{seen}, true},
		{"a repeat in place of another flag", []migrate.Flag{seen, seen}, []migrate.Flag{seen, flagged}, false},
		{"repeats on both sides, other flags", []migrate.Flag{seen, seen, flagged}, []migrate.Flag{seen, flagged, flagged}, true},
		{"same length, one flag missing each way", []migrate.Flag{seen, seen, flagged}, []migrate.Flag{seen, answered, flagged}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := migrate.SameFlags(c.a, c.b); got != c.same {
				t.Errorf("SameFlags(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
			}
			if got := migrate.SameFlags(c.b, c.a); got != c.same {
				t.Errorf("SameFlags(%q, %q) = %v, want %v", c.b, c.a, got, c.same)
			}
		})
	}
}

func TestContainsFlagIgnoresCase(t *testing.T) {
	m := migrate.MessageInfo{Flags: []migrate.Flag{`\SEEN`, "Work"}}
	if !m.HasFlag(migrate.FlagSeen) || !m.HasFlag("work") {
		t.Errorf("%q: \\Seen and work not found", m.Flags)
	}
	if m.HasFlag(migrate.FlagFlagged) || migrate.ContainsFlag(nil, migrate.FlagSeen) {
		t.Error("a flag found where there is none")
	}
}

func TestFlagIsKeyword(t *testing.T) {
	for f, want := range map[migrate.Flag]bool{
		migrate.FlagSeen: false, migrate.FlagDraft: false, `\Recent`: false,
		"Work": true, "$Label1": true, "$MDNSent": true, "": false,
	} {
		if got := f.IsKeyword(); got != want {
			t.Errorf("%q.IsKeyword() = %v, want %v", f, got, want)
		}
	}
}

// SortedFlags sorts a copy and leaves its argument as it was.
func TestSortedFlags(t *testing.T) {
	in := []migrate.Flag{"Work", migrate.FlagSeen, migrate.FlagAnswered}
	orig := slices.Clone(in)
	got := migrate.SortedFlags(in)
	if !slices.IsSorted(got) || !migrate.SameFlags(got, in) || len(got) != len(in) {
		t.Errorf("SortedFlags(%q) = %q", in, got)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("SortedFlags changed its argument: %q, was %q", in, orig)
	}
	if got := migrate.SortedFlags(nil); len(got) != 0 {
		t.Errorf("SortedFlags(nil) = %q", got)
	}
}
