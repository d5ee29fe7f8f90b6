package exchange

import (
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// TestUploadSessions puts a generated multipart message of about 40 MB,
// whose attachments of 9 and 18 MB go through upload sessions, and checks
// every byte that arrives.
func TestUploadSessions(t *testing.T) {
	e := newEnv(t, nil)
	tm := genMessage(4, 2<<20, 9<<20, 18<<20, 700<<10)
	m := genPut(tm, 4, migrate.FlagSeen, "Projects")
	start := time.Now()
	id := e.put(t, e.wellKnown(t, "inbox"), m)
	t.Logf("%d bytes of MIME in %v", len(tm.raw), time.Since(start))
	checkJSONCopy(t, e, id, tm, m)
	st := e.srv.Stats()
	if st.ByRoute["POST /users/{user}/messages/{id}/attachments/createUploadSession"] != 2 {
		t.Errorf("upload sessions: %v", st.ByRoute)
	}
}
