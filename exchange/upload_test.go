package exchange

import (
	"errors"
	"net/http"
	"strings"
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

// TestUploadURLNotInErrors: a failed PUT to an upload session's URL,
// which is pre-authenticated, is reported without the URL.
func TestUploadURLNotInErrors(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut {
			return nil, errors.New("tls: bad certificate")
		}
		return nil, nil
	}})
	_, err := e.mb.Put(t.Context(), e.wellKnown(t, "inbox"), genPut(genMessage(7, 4<<20), 7))
	if err == nil {
		t.Fatal("Put survived a failed upload")
	}
	for _, secret := range []string{"authtoken", "AttachmentSessions", e.srv.URL()} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows %q", err, secret)
		}
	}
	if !strings.Contains(err.Error(), "(upload URL)") || !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("error %q does not say what failed", err)
	}
}
