package exchange

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"testing"
)

// TestSpoolLeavesNoFile: the temporary files that hold attachments too
// large for memory (parseMIME) and messages kept to be attached whole
// (rawCopy) have no name on disk while in use, so that mail never
// outlives the process that spooled it, even one killed before it could
// remove them; their content stays readable until closed.
func TestSpoolLeavesNoFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows cannot remove an open file: spools are removed when closed")
	}
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	empty := func(when string) {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("%s: %s left in the temporary directory", when, e.Name())
		}
	}

	tm := genMessage(11, 2*memAttachment, 3*memAttachment)
	p, err := parseMIME(bytes.NewReader(tm.raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.spool == nil {
		t.Fatal("nothing spooled: the test tests nothing")
	}
	empty("while a parsed message is open")
	for i, a := range p.atts {
		b, err := p.content(a)
		if err != nil || len(b) != int(a.size) {
			t.Errorf("attachment %d: %d bytes of %d, %v", i, len(b), a.size, err)
		}
	}
	p.close()
	empty("after close")

	c := &rawCopy{memLimit: 1 << 10}
	if _, err := c.Write(bytes.Repeat([]byte("x"), 4<<10)); err != nil {
		t.Fatal(err)
	}
	if c.f == nil {
		t.Fatal("rawCopy kept 4 KB in memory over a 1 KB limit: the test tests nothing")
	}
	empty("while a raw copy is open")
	b, err := io.ReadAll(io.NewSectionReader(c.reader(), 0, c.n))
	if err != nil || len(b) != 4<<10 {
		t.Errorf("raw copy: %d bytes, %v", len(b), err)
	}
	c.close()
	empty("after the raw copy's close")
}
