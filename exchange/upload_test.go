package exchange

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
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

// TestAttachmentLostAnswer: the answer to POST .../attachments is lost,
// after Exchange added the attachment or before the request reached it.
// Before sending it again, Put looks at the message's attachments: the
// attachment is there once, whichever way it went, even beside another
// of the same name and size that the create carried.
func TestAttachmentLostAnswer(t *testing.T) {
	const route = "POST /users/{user}/messages/{id}/attachments"
	for _, tc := range []struct {
		name     string
		arrived  bool // the lost request reached Exchange
		sameName bool // the create carried an attachment of the same name and size
	}{
		{name: "arrived", arrived: true},
		{name: "arrived beside its twin", arrived: true, sameName: true},
		{name: "lost on the way beside its twin", sameName: true},
		{name: "lost on the way"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var base http.RoundTripper
			var lost atomic.Int32
			e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
				if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/attachments") || lost.Add(1) != 1 {
					return nil, nil
				}
				if tc.arrived {
					resp, err := base.RoundTrip(r)
					if err == nil {
						drain(resp)
					}
				}
				return nil, fmt.Errorf("read: %w", syscall.ECONNRESET)
			}})
			base = e.srv.Client().Transport
			// Two attachments of 2 MB: the first fits in the create, the
			// second follows with POST .../attachments.
			tm := genMessage(12, 2<<20, 2<<20)
			if tc.sameName {
				tm.raw = bytes.ReplaceAll(tm.raw, []byte("report-2.pdf"), []byte("report-1.pdf"))
				tm.atts[2].name = "report-1.pdf"
			}
			m := genPut(tm, 12, migrate.FlagSeen)
			id := e.put(t, e.wellKnown(t, "inbox"), m)
			if lost.Load() < 1 {
				t.Fatal("no attachment was posted")
			}
			checkJSONCopy(t, e, id, tm, m)
			if n := e.srv.Stats().ByRoute[route]; n != 1 {
				t.Errorf("Exchange received %d POSTs of the attachment, want 1", n)
			}
		})
	}
}

// TestUploadLastRangeLostAnswer: the answer to the PUT of an upload
// session's last range is lost, after Exchange stored it (which completes
// the attachment and ends the session) or before it reached Exchange. The
// retry finds the session gone (404) in the first case: Put looks for the
// attachment instead of failing the message. Either way the attachment
// is there once, whole.
func TestUploadLastRangeLostAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stored bool
	}{{"stored", true}, {"lost on the way", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.srv.FailNextUpload(exchangetest.UploadFault{Stored: tc.stored})
			// One attachment over 3 MB: one upload session of one range.
			tm := genMessage(13, 3<<20+1000)
			m := genPut(tm, 13, migrate.FlagSeen)
			id := e.put(t, e.wellKnown(t, "inbox"), m)
			checkJSONCopy(t, e, id, tm, m)
			if n := e.srv.Stats().ByRoute["PUT /api/v2.0/Users('{user}')/Messages('{id}')/AttachmentSessions('{id}')"]; n != 2 {
				t.Errorf("%d PUTs to the upload session, want 2 (the lost one and its retry)", n)
			}
		})
	}
}
