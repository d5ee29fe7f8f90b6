package imapsrctest_test

import (
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestSeedMemServer(t *testing.T) {
	srv, err := imapsrctest.StartMemServer(map[string]string{"alice": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fx := migratetest.Sample()
	if err := imapsrctest.Seed(srv.Addr(), "alice", "pw", fx); err != nil {
		t.Fatal(err)
	}
	c := imapsrctest.Client(t, srv.Addr(), "alice", "pw")
	for _, f := range fx.Folders {
		name := f.Path[0]
		for _, p := range f.Path[1:] {
			name += "/" + p
		}
		st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatalf("status %q: %v", name, err)
		}
		if int(*st.NumMessages) != len(f.Messages) {
			t.Errorf("%q holds %d messages, want %d", name, *st.NumMessages, len(f.Messages))
		}
	}
	if err := imapsrctest.Seed(srv.Addr(), "alice", "wrong", fx); err == nil {
		t.Error("Seed with a wrong password succeeded")
	}
}
