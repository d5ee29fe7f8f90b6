package imapsrc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// plain returns a Source logging in as user over plaintext (loopback
// test servers only).
func plain(addr, user, pass string) *imapsrc.Source {
	return imapsrc.New(&imapsrc.Options{Addr: addr, Security: imapsrc.Plaintext, Username: user, Password: pass})
}

// closeSrc closes s when the test ends, failing it if Close fails.
func closeSrc(t testing.TB, s *imapsrc.Source) {
	t.Cleanup(func() { assert.NoError(t, s.Close(), "Close") })
}

// seed fills user's mailbox on the plaintext server at addr with fx.
func seed(t testing.TB, addr, user, pass string, fx *migratetest.Fixture) {
	t.Helper()
	require.NoError(t, imapsrctest.Seed(addr, user, pass, fx))
}

// startMem starts go-imap's in-memory server on a loopback port with one
// user, SPECIAL-USE and NAMESPACE, and returns its address.
func startMem(t testing.TB, user, pass string) string {
	t.Helper()
	return startMemOpts(t, &imapsrctest.MemOptions{Users: map[string]string{user: pass}, Caps: imap.CapSet{
		imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
		imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {}, imap.CapNamespace: {},
	}}).Addr()
}

// startMemOpts starts go-imap's in-memory server configured by opts and
// stops it when the test ends.
func startMemOpts(t testing.TB, opts *imapsrctest.MemOptions) *imapsrctest.MemServer {
	t.Helper()
	srv, err := imapsrctest.StartMem(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// memSource starts an in-memory server (as startMem) holding fx for
// alice, and returns a Source on it, closed when the test ends.
func memSource(t testing.TB, fx *migratetest.Fixture) *imapsrc.Source {
	t.Helper()
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", fx)
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	return src
}

// startDovecot starts a Dovecot with alice/secret (and admin/adminpw as
// master user) and seeds alice's mailbox with fx.
func startDovecot(t testing.TB, layout string, fx *migratetest.Fixture) *dovecottest.Server {
	t.Helper()
	srv := dovecottest.Start(t, &dovecottest.Options{
		Layout:     layout,
		Users:      map[string]string{"alice": "secret"},
		MasterUser: "admin", MasterPassword: "adminpw",
	})
	if fx != nil {
		seed(t, srv.Addr(), "alice", "secret", fx)
	}
	return srv
}

// bigFixture is an INBOX of n messages of a few KB each.
func bigFixture(n int) *migratetest.Fixture {
	base := migratetest.Sample().Folders[0].Messages
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox}}}
	for i := range n {
		m := base[i%len(base)]
		raw := bytes.Replace(m.Raw, []byte("@mailferry.test>"), []byte("-"+strconv.Itoa(i)+"@mailferry.test>"), 1)
		raw = append(raw, bytes.Repeat([]byte("padding line to make the body bigger "+strconv.Itoa(i)+"\r\n"), 100)...)
		fx.Folders[0].Messages = append(fx.Folders[0].Messages, migratetest.FixtureMessage{Raw: raw, Flags: m.Flags, InternalDate: m.InternalDate})
	}
	return fx
}

// uidsUpTo returns the UIDs 1 to n.
func uidsUpTo(n int) []uint32 {
	uids := make([]uint32, n)
	for i := range uids {
		uids[i] = uint32(i + 1)
	}
	return uids
}

// folders returns src's folders, failing the test on an error.
func folders(t testing.TB, src *imapsrc.Source) []migrate.Folder {
	t.Helper()
	fs, err := src.Folders(context.Background())
	require.NoError(t, err)
	return fs
}

// folderWhere returns the first of src's folders for which match is true.
func folderWhere(t testing.TB, src *imapsrc.Source, what string, match func(migrate.Folder) bool) migrate.Folder {
	t.Helper()
	for _, f := range folders(t, src) {
		if match(f) {
			return f
		}
	}
	require.FailNow(t, "no "+what)
	return migrate.Folder{}
}

// folderNamed returns src's folder called name.
func folderNamed(t testing.TB, src *imapsrc.Source, name string) migrate.Folder {
	t.Helper()
	return folderWhere(t, src, "folder "+strconv.Quote(name), func(f migrate.Folder) bool { return f.Name == name })
}

// inbox returns src's folder with RoleInbox.
func inbox(t testing.TB, src *imapsrc.Source) migrate.Folder {
	t.Helper()
	return folderWhere(t, src, "INBOX", func(f migrate.Folder) bool { return f.Role == migrate.RoleInbox })
}

// stepOf returns the Step of err's StepError, or "".
func stepOf(err error) imapsrc.Step {
	var se *imapsrc.StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return ""
}

// counter is an Options.DialContext that counts the connections open,
// and every attempt to open one.
type counter struct {
	mu                sync.Mutex
	open, peak, total int
	tries             int // attempts, failed ones included
	failed            int // attempts that failed
	// onFail, if set, is called after each failed attempt with the
	// number of failed attempts so far.
	onFail func(failed int)
}

func (d *counter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.tries++
	d.mu.Unlock()
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		d.mu.Lock()
		d.failed++
		failed, onFail := d.failed, d.onFail
		d.mu.Unlock()
		if onFail != nil {
			onFail(failed)
		}
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.open++
	d.total++
	d.peak = max(d.peak, d.open)
	return &countedConn{Conn: c, d: d}, nil
}

func (d *counter) stats() (open, peak, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open, d.peak, d.total
}

// attempts returns how many connections d has tried to open.
func (d *counter) attempts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tries
}

// closedAddr returns a loopback address nobody listens on: connecting
// to it is refused.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// countedConn is a connection of a counter: closing it counts.
type countedConn struct {
	net.Conn
	d    *counter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.open--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

// writeMaildir adds msgs to folder of alice's mailbox on srv by writing
// Maildir files (keywords left out): thousands of messages in a moment,
// where APPEND takes milliseconds each.
func writeMaildir(t testing.TB, srv *dovecottest.Server, folder string, msgs []migratetest.FixtureMessage) {
	t.Helper()
	var out []dovecottest.MaildirMessage
	for _, m := range msgs {
		var flags []string
		for _, f := range m.Flags {
			if !f.IsKeyword() {
				flags = append(flags, string(f))
			}
		}
		out = append(out, dovecottest.MaildirMessage{Raw: m.Raw, Flags: flags, Date: m.InternalDate})
	}
	require.NoError(t, srv.WriteMaildir("alice", folder, out))
}

// longIDMessages returns n small messages with system flags only, whose
// Message-IDs are about 900 bytes long (within RFC 5322's 998 per line),
// so that listing them takes about 1 KB each.
func longIDMessages(n int) []migratetest.FixtureMessage {
	pad := strings.Repeat("0123456789", 90)
	date := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	msgs := make([]migratetest.FixtureMessage, n)
	for i := range msgs {
		raw := fmt.Sprintf("Message-ID: <%d.%s@mailferry.test>\r\nFrom: Carol <carol@example.org>\r\nSubject: message %d\r\n"+
			"Date: Fri, 01 Mar 2024 09:00:00 +0000\r\n\r\nBody of message %d.\r\n", i+1, pad, i+1, i+1)
		var flags []migrate.Flag
		if i%3 == 0 {
			flags = []migrate.Flag{migrate.FlagSeen}
		}
		msgs[i] = migratetest.FixtureMessage{Raw: []byte(raw), Flags: flags, InternalDate: date.Add(time.Duration(i) * time.Minute)}
	}
	return msgs
}

// clientRcvBuf is the receive buffer cappedDial gives a Source's sockets.
const clientRcvBuf = 64 << 10

// cappedDial is an Options.DialContext whose sockets have a receive
// buffer of clientRcvBuf, which the kernel then does not grow: with it,
// what a stream can hold in flight is bounded (see socketBuffers).
func cappedDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, clientRcvBuf)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	return d.DialContext(ctx, network, addr)
}

// socketBuffers bounds what the kernel can hold of one loopback stream
// from a server to a Source that dials with cappedDial: the server's
// send buffer at its largest (tcp_wmem's maximum), and the client's
// receive buffer (which the kernel doubles for its bookkeeping).
// Whatever the server had written beyond it was still in its own memory
// when it was killed, and is lost with it.
func socketBuffers(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	require.NoError(t, err)
	f := strings.Fields(string(b))
	require.Len(t, f, 3, "tcp_wmem: %q", b)
	wmem, err := strconv.ParseInt(f[2], 10, 64)
	require.NoError(t, err)
	return wmem + 2*clientRcvBuf
}
