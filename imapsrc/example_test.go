package imapsrc_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/migrate"
)

// Example reads a mailbox held by go-imap's in-memory server on a loopback
// port: its folders, then every message of the inbox, body streamed.
func Example() {
	// An in-memory IMAP server with one user and one message.
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("alice", "secret")
	_ = user.Create("INBOX", nil)
	raw := "Message-ID: <hello@example.com>\r\nSubject: Hello\r\n\r\nHi Alice!\r\n"
	_, _ = user.Append("INBOX", literal(raw), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)})
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	src := imapsrc.New(&imapsrc.Options{
		Addr:     ln.Addr().String(),
		Security: imapsrc.Plaintext, // a loopback test server; use TLS for real ones
		Username: "alice",
		Password: "secret",
	})
	defer src.Close()

	ctx := context.Background()
	folders, err := src.Folders(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range folders {
		fmt.Printf("folder %s: role %s, %d message(s)\n", f.Name, f.Role, f.Messages)
		var uids []uint32
		_ = src.List(ctx, f, func(m migrate.MessageInfo) error {
			fmt.Printf("  UID %d %s %v %d bytes\n", m.UID, m.MessageID, m.Flags, m.Size)
			uids = append(uids, m.UID)
			return nil
		})
		err := src.Fetch(ctx, f, uids, func(m *migrate.Message) error {
			body, err := io.ReadAll(m.Body)
			fmt.Printf("  body of UID %d: %q\n", m.UID, body)
			return err
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// folder INBOX: role inbox, 1 message(s)
	//   UID 1 <hello@example.com> [\Seen] 62 bytes
	//   body of UID 1: "Message-ID: <hello@example.com>\r\nSubject: Hello\r\n\r\nHi Alice!\r\n"
}

// stringLiteral is a string as an imap.LiteralReader.
type stringLiteral struct {
	*strings.Reader
	size int64
}

func (l stringLiteral) Size() int64 { return l.size }

// literal returns s as an imap.LiteralReader.
func literal(s string) imap.LiteralReader {
	return stringLiteral{strings.NewReader(s), int64(len(s))}
}
