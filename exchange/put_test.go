package exchange

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

func TestPut(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	inbox := e.folder(t, "Inbox", migrate.RoleInbox)
	cases := []struct {
		name     string
		flags    []migrate.Flag
		read     bool
		flagged  string
		wantCats []string
	}{
		{"unread", nil, false, "notFlagged", nil},
		{"read", []migrate.Flag{migrate.FlagSeen}, true, "notFlagged", nil},
		{"flagged", []migrate.Flag{`\seen`, migrate.FlagFlagged, migrate.FlagAnswered}, true, "flagged", nil},
		{"keywords", []migrate.Flag{"Work", "$Forwarded", "work", "Personal", `\Deleted`}, false, "notFlagged", []string{"Work", "Personal"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := sampleMIME(fmt.Sprintf("<put-%d@example.org>", i), "Put "+c.name)
			m := message("INBOX", uint32(i+1), raw, c.flags...)
			id := e.put(t, inbox, m)
			got, ok := e.srv.Message(testUser, id)
			if !ok {
				t.Fatalf("Put returned %q, which the mailbox does not hold", id)
			}
			if !bytes.Equal(got.MIME, raw) {
				t.Errorf("MIME differs:\n%q\nwant\n%q", got.MIME, raw)
			}
			if got.FolderID != inbox || got.IsDraft {
				t.Errorf("folder %q draft %v, want %q false", got.FolderID, got.IsDraft, inbox)
			}
			if got.IsRead != c.read || got.FlagStatus != c.flagged {
				t.Errorf("isRead %v flag %q, want %v %q", got.IsRead, got.FlagStatus, c.read, c.flagged)
			}
			if len(got.Categories) != 0 || len(c.wantCats) != 0 {
				if !slices.Equal(got.Categories, c.wantCats) {
					t.Errorf("categories %q, want %q", got.Categories, c.wantCats)
				}
			}
			if wm := got.ExtendedProperties[WatermarkProperty]; wm != m.ID.String() {
				t.Errorf("watermark %q, want %q (props %v)", wm, m.ID.String(), got.ExtendedProperties)
			}
		})
	}
	st := e.srv.Stats()
	if st.ByRoute["POST /users/{user}/mailFolders/{id}/importMime"] != len(cases) {
		t.Errorf("importMime calls: %v", st.ByRoute)
	}
}

func TestPutTooLarge(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	ctx := t.Context()
	inbox := e.wellKnown(t, "inbox")
	before := e.srv.Stats().Requests
	huge := message("INBOX", 1, sampleMIME("<huge@example.org>", "huge"))
	huge.Size = MaxMessageSize + 1
	if _, err := e.mb.Put(ctx, inbox, huge); !errors.Is(err, migrate.ErrItem) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Put of %d bytes: %v, want ErrItem too large", huge.Size, err)
	}
	if n := e.srv.Stats().Requests - before; n != 0 {
		t.Errorf("Put of a too large message made %d requests", n)
	}
	// Over MaxImportSize it takes the JSON path, where a main body over
	// 3 MB cannot go into the create: it is stored degraded.
	raw := append(sampleMIME("<big@example.org>", "big"), bytes.Repeat([]byte("x"), MaxImportSize)...)
	m := message("INBOX", 1, raw)
	m.Size = 0 // a source that does not know the size: Put still counts
	id, err := e.mb.Put(ctx, inbox, m)
	if id == "" || !errors.Is(err, migrate.ErrDegraded) || !strings.Contains(err.Error(), "main body over") {
		t.Errorf("Put of %d bytes of text: %q, %v; want it degraded, body too large", len(raw), id, err)
	}
	// An empty message is an empty item.
	id = e.put(t, inbox, message("INBOX", 3, nil))
	if got, _ := e.srv.Message(testUser, id); got.Subject != "" || got.MIME != nil || got.ExtendedProperties[WatermarkProperty] == "" {
		t.Errorf("empty message: %+v", got)
	}
	// Exactly MaxImportSize goes through importMime (4 MB of base64).
	exact := append(sampleMIME("<exact@example.org>", "exact"), []byte{}...)
	exact = append(exact, bytes.Repeat([]byte("y"), MaxImportSize-len(exact))...)
	id = e.put(t, inbox, message("INBOX", 2, exact))
	if got, _ := e.srv.Message(testUser, id); !bytes.Equal(got.MIME, exact) {
		t.Errorf("Put of exactly %d bytes: MIME not kept", len(exact))
	}
}

// TestPutSizes puts generated multipart messages of about 1 KB and
// 3.5 MB and checks what arrives: the small one through importMime, byte
// for byte, under ReceivedDateAtImport, or through the JSON create under
// the default ReceivedDateFromSource (the emulator does not honour the
// delivery-time PATCH), the other through the JSON create with its
// attachments. TestUploadSessions puts one of 40 MB.
func TestPutSizes(t *testing.T) {
	t.Run("1KB-importMime", func(t *testing.T) {
		e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
		tm := genMessage(1)
		m := genPut(tm, 1, migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered, "Work")
		id := e.put(t, e.wellKnown(t, "inbox"), m)
		got, _ := e.srv.Message(testUser, id)
		if !bytes.Equal(got.MIME, tm.raw) {
			t.Errorf("MIME differs from the source")
		}
		if !got.SentDateTime.Equal(tm.date) || got.IsDraft {
			t.Errorf("sent %v, draft %v", got.SentDateTime, got.IsDraft)
		}
		checkFlags(t, got, m.Flags)
	})
	t.Run("1KB-received-from-source", func(t *testing.T) {
		e := newEnv(t, nil)
		if honoured, err := e.mb.ProbeReceivedDates(t.Context()); honoured || err != nil {
			t.Fatalf("probe: %v, %v; want not honoured", honoured, err)
		}
		inbox := e.wellKnown(t, "inbox")
		before := e.srv.Stats()
		tm := genMessage(2)
		m := genPut(tm, 2, migrate.FlagAnswered, "Work", "$Forwarded")
		id := e.put(t, inbox, m)
		checkJSONCopy(t, e, id, tm, m)
		st := e.srv.Stats()
		if n := st.ByRoute["POST /users/{user}/mailFolders/{id}/messages"]; n != 1 || st.Requests-before.Requests > 4 {
			t.Errorf("one create expected, with its attachments: %v", st.ByRoute)
		}
	})
	t.Run("3.5MB", func(t *testing.T) {
		e := newEnv(t, nil)
		tm := genMessage(3, 100<<10, 3300<<10)
		m := genPut(tm, 3, migrate.FlagFlagged)
		id := e.put(t, e.wellKnown(t, "inbox"), m)
		checkJSONCopy(t, e, id, tm, m)
	})
}

// TestPutLostAnswer drops the answer to the creating request after Graph
// carried it out: Put must find the item instead of creating it again.
func TestPutLostAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route string
		dates ReceivedDates
	}{
		{"importMime", "/importMime", ReceivedDateAtImport},
		{"json", "/messages", ReceivedDateFromSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEnvLosingAnswer(t, tc.dates, tc.route)
			tm := genMessage(6)
			m := genPut(tm, 6, migrate.FlagSeen)
			id := e.put(t, e.wellKnown(t, "inbox"), m)
			msgs := e.srv.Messages(testUser)
			if len(msgs) != 1 || msgs[0].ID != id {
				t.Fatalf("%d messages, want the one Put returned", len(msgs))
			}
			if msgs[0].ExtendedProperties[WatermarkProperty] != m.ID.String() || !msgs[0].IsRead {
				t.Errorf("the found item was not completed: %+v", msgs[0].ExtendedProperties)
			}
		})
	}
}

// TestConcurrentPut puts from several goroutines into one Mailbox.
func TestConcurrentPut(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	var wg sync.WaitGroup
	ids := make([]string, 12)
	errs := make([]error, len(ids))
	for i := range ids {
		wg.Go(func() {
			folder, err := e.mb.EnsureFolder(ctx, "", fmt.Sprintf("F%d", i%3), migrate.RoleNone)
			if err != nil {
				errs[i] = err
				return
			}
			ids[i], errs[i] = e.mb.Put(ctx, folder, message(fmt.Sprintf("F%d", i%3), uint32(i+1), sampleMIME(fmt.Sprintf("<c%d@example.org>", i), "c")))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if n := len(e.srv.Messages(testUser)); n != len(ids) {
		t.Errorf("%d messages, want %d", n, len(ids))
	}
	names := map[string]int{}
	for _, f := range e.srv.Folders(testUser) {
		names[f.DisplayName]++
	}
	for i := range 3 {
		if n := names[fmt.Sprintf("F%d", i)]; n != 1 {
			t.Errorf("folder F%d exists %d times", i, n)
		}
	}
}
