// Package dovecottest starts a private Dovecot IMAP server for tests.
//
// Each Server runs its own "dovecot -F" master process with a configuration
// generated in t.TempDir(): plaintext IMAP on a free 127.0.0.1 port (and,
// with Options.TLS, STARTTLS on it plus implicit TLS on a second port,
// with a certificate generated for the test), users
// and plaintext passwords from a passwd-file, Maildir storage under the
// temporary directory, and a log file that is printed when the test fails.
// It works as root (login and mail processes then run as Dovecot's own
// unprivileged users) and as an ordinary user (everything runs as that user).
//
// When Dovecot is not installed, Start skips the test, except when the
// environment variable CI is "true", where it fails it; Require does the
// same for a server started with Launch.
package dovecottest

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InstallHint is the message a test skips with when Dovecot is missing.
const InstallHint = "install Dovecot: apt-get install -y dovecot-imapd"

// The mailbox layouts a Server can offer.
const (
	// LayoutDefault is a personal namespace without prefix and with the
	// separator "/": INBOX, Sent, Drafts, Trash, Junk, Archive.
	LayoutDefault = "default"
	// LayoutCourier is a Courier-style namespace with the prefix "INBOX."
	// and the separator ".": INBOX, INBOX.Sent, INBOX.Drafts, ...
	LayoutCourier = "courier"
)

// SpecialUse returns the mailboxes every layout creates automatically, with
// their SPECIAL-USE attributes (names relative to the namespace prefix).
// Each call returns a new slice.
func SpecialUse() []struct{ Name, Attr string } {
	return []struct{ Name, Attr string }{
		{"Sent", `\Sent`},
		{"Drafts", `\Drafts`},
		{"Trash", `\Trash`},
		{"Junk", `\Junk`},
		{"Archive", `\Archive`},
	}
}

// Options configures a Server. A nil *Options means the zero value.
type Options struct {
	// Users maps user names to plaintext passwords. Default: one user
	// "alice" with password "secret". Neither may contain ':' or newlines.
	Users map[string]string
	// Layout is LayoutDefault (the default when empty) or LayoutCourier.
	Layout string
	// MasterUser and MasterPassword, when set, add a master user: the login
	// "alice*admin" with admin's password logs in as alice, and so does
	// SASL PLAIN with authorization identity "alice" and admin's
	// credentials.
	MasterUser, MasterPassword string
	// TLS, when set, makes the server offer STARTTLS on Addr and implicit
	// TLS on TLSAddr, with a certificate for 127.0.0.1 (and "localhost")
	// signed by a CA generated for the test (see RootCAs). Plaintext
	// logins stay allowed on Addr.
	TLS bool
	// ListEscape lets folder names hold characters the storage refuses,
	// such as "/" with LayoutCourier (whose separator is "."), with
	// Dovecot's listescape plugin: "INBOX.a/b" is then the one folder
	// "a/b". The separator itself stays a separator.
	ListEscape bool
	// Binary is the dovecot executable. Default: "dovecot" from PATH, else
	// /usr/sbin/dovecot.
	Binary string
}

// Server is a running Dovecot. Its methods may be called from any goroutine.
type Server struct {
	t         testing.TB // nil for a Launched server
	removeDir string     // removed by Stop (Launch)
	dir       string
	conf      string
	logPath   string
	addr      string
	tlsAddr   string
	certs     *testCerts
	mailDir   string // users' homes are mailDir/<user>
	ids       *identities
	layout    string
	bin       string

	mu      sync.Mutex
	proc    *process // the running master (replaced by Restart and Revive)
	down    bool     // between Crash and Revive
	stopped bool

	stopOnce sync.Once
}

// process is one run of the Dovecot master process.
type process struct {
	cmd  *exec.Cmd
	out  bytes.Buffer  // its stdout and stderr
	done chan struct{} // closed when it has exited
	err  error         // cmd.Wait's, once done is closed
}

// kill ends the master and every process it started (its process group)
// with SIGKILL, as a crash would, and returns once every one of them has
// exited: the server's sockets, listening ones included, are closed then.
func (p *process) kill() error {
	pgid := p.cmd.Process.Pid
	// Until none is left: a process forked while the group was signalled
	// is signalled in the next round.
	for range 5 {
		live, err := procs(func(q procInfo) bool { return q.pgrp == pgid && !q.exited })
		if err != nil {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
			return err
		}
		if len(live) == 0 {
			break
		}
		if _, err := killAndWait(live); err != nil {
			<-p.done
			return err
		}
	}
	<-p.done
	return nil
}

// Start starts a Dovecot for the test and stops it at t.Cleanup. It returns
// once the IMAP port accepts connections.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	s, err := launch(opts, t.TempDir())
	Require(t, err)
	s.t = t
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("dovecottest: log of the Dovecot at %s (%s):\n%s", s.addr, s.logPath, s.Log())
		}
	})
	return s
}

// Launch starts a Dovecot that belongs to no test, for benchmarks and
// servers shared by a whole test binary (started once, stopped in
// TestMain). The caller must call Stop, which also removes the server's
// directory. When Dovecot is not installed, the error matches
// ErrNotInstalled.
func Launch(opts *Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "dovecottest")
	if err != nil {
		return nil, err
	}
	s, err := launch(opts, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.removeDir = dir
	return s, nil
}

// Require ends the test or benchmark tb if err, an error of Launch, says
// that no Dovecot could be started, as Start does: when Dovecot is not
// installed it skips tb, except when the environment variable CI is
// "true", where it fails it; any other error fails tb. A nil err does
// nothing.
func Require(tb testing.TB, err error) {
	if err == nil {
		return
	}
	tb.Helper()
	if errors.Is(err, errNotInstalled) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("dovecottest: %v; %s", err, InstallHint)
		}
		tb.Skipf("dovecottest: %v; %s", err, InstallHint)
	}
	tb.Fatalf("dovecottest: %v", err)
}

// ErrNotInstalled is Launch's error when there is no dovecot binary.
var ErrNotInstalled = errNotInstalled

var errNotInstalled = errors.New("dovecot not installed")

func launch(opts *Options, dir string) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	bin, err := findBinary(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotInstalled, err)
	}
	layout := opts.Layout
	if layout == "" {
		layout = LayoutDefault
	}
	if layout != LayoutDefault && layout != LayoutCourier {
		return nil, fmt.Errorf("unknown layout %q", layout)
	}
	users := opts.Users
	if len(users) == 0 {
		users = map[string]string{"alice": "secret"}
	}
	for u, p := range users {
		if !validField(u) || !validField(p) || u == "" || strings.Contains(u, "*") {
			return nil, fmt.Errorf("user %q: names and passwords must not contain ':', '*' or newlines", u)
		}
	}
	if opts.MasterUser != "" && (!validField(opts.MasterUser) || !validField(opts.MasterPassword)) {
		return nil, fmt.Errorf("bad master user %q", opts.MasterUser)
	}
	ids, err := runAs(dir)
	if err != nil {
		return nil, err
	}
	var certs *testCerts
	if opts.TLS {
		if certs, err = newTestCerts(dir); err != nil {
			return nil, fmt.Errorf("certificates: %w", err)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(bin, dir, attempt, layout, users, opts, ids, certs)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, lastErr
}

var errAddrInUse = errors.New("address already in use")

func start(bin, root string, attempt int, layout string, users map[string]string, opts *Options, ids *identities, certs *testCerts) (*Server, error) {
	dir := filepath.Join(root, "run"+strconv.Itoa(attempt))
	if err := os.Mkdir(dir, 0o711); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ssl := "ssl = no\n"
	imaps := "  inet_listener imaps {\n    port = 0\n  }\n"
	tlsPort := 0
	if certs != nil {
		if tlsPort, err = freePort(); err != nil {
			return nil, err
		}
		ssl = fmt.Sprintf("ssl = yes\nssl_cert = <%s\nssl_key = <%s\n", certs.certPath, certs.keyPath)
		imaps = fmt.Sprintf("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", tlsPort)
	}
	mailDir := filepath.Join(root, "mail")
	if err := os.MkdirAll(mailDir, 0o700); err != nil {
		return nil, err
	}
	if ids.chown {
		if err := os.Chown(mailDir, ids.mailUID, ids.mailGID); err != nil {
			return nil, err
		}
	}
	var passwd strings.Builder
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s:%d:%d::%s::\n", u, users[u], ids.mailUID, ids.mailGID, filepath.Join(mailDir, u))
	}
	passwdPath := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwdPath, []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	var master string
	if opts.MasterUser != "" {
		masterPath := filepath.Join(dir, "master-users")
		line := fmt.Sprintf("%s:{PLAIN}%s\n", opts.MasterUser, opts.MasterPassword)
		if err := os.WriteFile(masterPath, []byte(line), 0o644); err != nil {
			return nil, err
		}
		master = fmt.Sprintf(`auth_master_user_separator = *
passdb {
  driver = passwd-file
  master = yes
  args = scheme=PLAIN %s
  result_success = continue
}
`, masterPath)
	}

	var ns strings.Builder
	if layout == LayoutCourier {
		ns.WriteString("namespace inbox {\n  inbox = yes\n  separator = .\n  prefix = INBOX.\n")
	} else {
		ns.WriteString("namespace inbox {\n  inbox = yes\n  separator = /\n  prefix =\n")
	}
	for _, m := range SpecialUse() {
		fmt.Fprintf(&ns, "  mailbox %s {\n    special_use = %s\n    auto = create\n  }\n", m.Name, m.Attr)
	}
	ns.WriteString("}\n")
	mailLocation := "maildir:~/Maildir:LAYOUT=fs"
	if layout == LayoutCourier {
		mailLocation = "maildir:~/Maildir"
	}
	if opts.ListEscape {
		ns.WriteString("mail_plugins = $mail_plugins listescape\n")
	}

	logPath := filepath.Join(dir, "dovecot.log")
	conf := fmt.Sprintf(`# generated by dovecottest
protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/base
state_dir = %[1]s/state
instance_name = dovecottest-%[2]d
log_path = %[3]s
info_log_path = %[3]s
%[12]sdisable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = %[4]s
default_internal_group = %[5]s
default_login_user = %[6]s
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
mail_location = %[7]s
mail_fsync = never
mail_max_userip_connections = 100
mail_privileged_group =
protocol imap {
  mail_max_userip_connections = 100
}
%[8]s
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[9]s
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[9]s
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
%[13]s}
%[10]s%[11]s`, dir, port, logPath, ids.internalUser, ids.internalGroup, ids.loginUser,
		mailLocation, ns.String(), passwdPath, master, ids.extra, ssl, imaps)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}

	s := &Server{
		dir:     dir,
		conf:    confPath,
		logPath: logPath,
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		mailDir: mailDir,
		ids:     ids,
		certs:   certs,
		layout:  layout,
		bin:     bin,
	}
	if certs != nil {
		s.tlsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
	}
	p, err := s.spawn()
	if err != nil {
		if errors.Is(err, errAddrInUse) {
			return nil, fmt.Errorf("port %d: %w", port, err)
		}
		return nil, err
	}
	s.proc = p
	return s, nil
}

// spawn starts the master process with s's configuration and returns
// once the IMAP port accepts connections.
func (s *Server) spawn() (*process, error) {
	p := &process{cmd: exec.Command(s.bin, "-F", "-c", s.conf), done: make(chan struct{})}
	p.cmd.Dir = s.dir
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	// Its own process group, so that Stop can end every process of this
	// server; and killed with the test binary should that die before
	// its cleanups run (a test timeout's panic, for one).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			log, _ := os.ReadFile(s.logPath)
			msg := p.out.String() + string(log)
			if strings.Contains(msg, "Address already in use") {
				return nil, errAddrInUse
			}
			return nil, fmt.Errorf("dovecot exited (%v):\n%s", p.err, msg)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("dovecot did not listen on %s within 10s:\n%s%s", s.addr, p.out.String(), s.Log())
		}
	}
}

// Restart ends the server as a crash would (SIGKILL to the master and to
// every process it started), leaves it down for down, then starts it
// again on the same address with the same configuration, users and mail,
// and returns once it accepts connections. Sessions open before it see
// their connections drop, and connections attempted while it is down are
// refused, as during the restart of a real server. Unlike the other
// methods it does not fail the test but returns its error, so that it can
// be called from any goroutine (an event handler, a timer). Restarting a
// stopped server is an error. Crash and Revive are its two halves, for a
// test that decides itself when the server comes back.
func (s *Server) Restart(down time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.crashLocked("Restart"); err != nil {
		return err
	}
	time.Sleep(down)
	return s.reviveLocked("Restart")
}

// Crash ends the server as a crash would (SIGKILL to the master and to
// every process it started) and returns once all of them have exited:
// sessions open before it see their connections drop, and from then on
// connections are refused, until Revive. Like Restart it returns its
// error rather than failing the test. Crashing a stopped or crashed
// server is an error.
//
// A process killed while it creates a Maildir dotlock
// (dovecot-uidlist.lock) leaves it empty, and Dovecot then waits two
// minutes for it to go stale before it opens that folder again; since no
// process of the server is left to hold one, Crash removes the dotlocks.
func (s *Server) Crash() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crashLocked("Crash")
}

// Revive starts a server that Crash ended again, on the same address with
// the same configuration, users and mail, and returns once it accepts
// connections. Like Restart it returns its error rather than failing the
// test.
func (s *Server) Revive() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reviveLocked("Revive")
}

func (s *Server) crashLocked(what string) error {
	switch {
	case s.stopped:
		return fmt.Errorf("dovecottest: %s after Stop", what)
	case s.down:
		return fmt.Errorf("dovecottest: %s of a crashed server", what)
	}
	s.down = true
	if err := s.proc.kill(); err != nil {
		return fmt.Errorf("dovecottest: %s: %w", strings.ToLower(what), err)
	}
	err := filepath.WalkDir(s.mailDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".lock") {
			err = os.Remove(path)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("dovecottest: %s: remove dotlocks: %w", strings.ToLower(what), err)
	}
	return nil
}

func (s *Server) reviveLocked(what string) error {
	switch {
	case s.stopped:
		return fmt.Errorf("dovecottest: %s after Stop", what)
	case !s.down:
		return fmt.Errorf("dovecottest: %s of a running server", what)
	}
	// The port was Dovecot's a moment ago; should the system not let it go
	// at once, try again for a little while.
	for deadline := time.Now().Add(5 * time.Second); ; {
		p, err := s.spawn()
		if err == nil {
			s.proc = p
			s.down = false
			return nil
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			return fmt.Errorf("dovecottest: %s on %s: %w", strings.ToLower(what), s.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addr returns the server's plaintext IMAP address, "127.0.0.1:port"
// (where STARTTLS is offered with Options.TLS).
func (s *Server) Addr() string { return s.addr }

// TLSAddr returns the server's implicit-TLS address, or "" without
// Options.TLS.
func (s *Server) TLSAddr() string { return s.tlsAddr }

// RootCAs returns a pool holding the CA that signed the server's
// certificate, for a client's tls.Config.RootCAs; nil without Options.TLS.
func (s *Server) RootCAs() *x509.CertPool {
	if s.certs == nil {
		return nil
	}
	return s.certs.pool
}

// Layout returns the server's mailbox layout, LayoutDefault or LayoutCourier.
func (s *Server) Layout() string { return s.layout }

// Prefix returns the personal namespace prefix: "" or "INBOX.".
func (s *Server) Prefix() string {
	if s.layout == LayoutCourier {
		return "INBOX."
	}
	return ""
}

// Delimiter returns the hierarchy delimiter: "/" or ".".
func (s *Server) Delimiter() string {
	if s.layout == LayoutCourier {
		return "."
	}
	return "/"
}

// ConfigPath returns the path of the generated dovecot.conf.
func (s *Server) ConfigPath() string { return s.conf }

// Log returns the content of the server's log file so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// DropConnections abruptly ends every logged-in IMAP session by killing
// the server's imap processes (SIGKILL), as a crash or a network failure
// would, and returns once they have exited: their connections are closed
// then (what the server had written before is still delivered). It
// returns how many sessions it ended. Connections that have not logged in
// yet are left alone. It works on Linux 5.3 and later (it reads /proc and
// waits with pidfds).
func (s *Server) DropConnections() int {
	n, err := s.dropConnections()
	if err != nil {
		if s.t != nil {
			s.t.Fatalf("dovecottest: %v", err)
		}
		panic("dovecottest: " + err.Error())
	}
	return n
}

func (s *Server) dropConnections() (int, error) {
	s.mu.Lock()
	master := s.proc.cmd.Process.Pid
	down := s.down
	s.mu.Unlock()
	if down {
		return 0, nil
	}
	sessions, err := procs(func(p procInfo) bool { return p.ppid == master && p.comm == "imap" && !p.exited })
	if err != nil {
		return 0, err
	}
	return killAndWait(sessions)
}

// Stop stops the server and waits for it to exit. It is called
// automatically at the end of the test; calling it again does nothing.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		// Dovecot's graceful shutdown waits about a second for its
		// children; nothing here needs to survive, so kill the whole
		// process group (the master and every process it started).
		s.mu.Lock()
		s.stopped = true
		p := s.proc
		s.mu.Unlock()
		_ = p.kill()
		if s.removeDir != "" {
			os.RemoveAll(s.removeDir)
		}
	})
}

func validField(s string) bool { return !strings.ContainsAny(s, ":\r\n") }

func findBinary(bin string) (string, error) {
	if bin != "" {
		return exec.LookPath(bin)
	}
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/dovecot"); err == nil {
		return "/usr/sbin/dovecot", nil
	}
	return "", errors.New("dovecot not found in PATH or /usr/sbin")
}

// freePort finds a free loopback port by binding port 0 and releasing it.
// Start retries with another port if Dovecot then finds it taken.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// identities are the system users Dovecot's processes run as.
type identities struct {
	internalUser, internalGroup, loginUser string
	mailUID, mailGID                       int
	chown                                  bool // the mail directory must be given to mailUID
	extra                                  string
}

// runAs decides which users Dovecot runs as. Unprivileged, everything runs
// as the current user. As root, Dovecot refuses to run its login processes
// or mail sessions as root, so they run as its packaged users (dovenull,
// dovecot) or nobody, and the temporary directory is made traversable.
func runAs(dir string) (*identities, error) {
	cur, err := user.Current()
	if err != nil {
		return nil, err
	}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() != 0 {
		g, err := user.LookupGroupId(strconv.Itoa(gid))
		group := strconv.Itoa(gid)
		if err == nil {
			group = g.Name
		}
		return &identities{
			internalUser: cur.Username, internalGroup: group, loginUser: cur.Username,
			mailUID: uid, mailGID: gid,
			// Only root may chroot.
			extra: "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n",
		}, nil
	}
	internal, err := lookupFirst("dovecot", "nobody")
	if err != nil {
		return nil, err
	}
	login, err := lookupFirst("dovenull", "nobody")
	if err != nil {
		return nil, err
	}
	group, err := user.LookupGroupId(internal.Gid)
	if err != nil {
		return nil, err
	}
	mailUID, _ := strconv.Atoi(internal.Uid)
	mailGID, _ := strconv.Atoi(internal.Gid)
	// t.TempDir() and its parent are 0700; unprivileged processes must be
	// able to traverse them to reach the passwd-file and the Maildirs.
	for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, err
		}
		if filepath.Dir(d) == os.TempDir() {
			break
		}
	}
	return &identities{
		internalUser: internal.Username, internalGroup: group.Name, loginUser: login.Username,
		mailUID: mailUID, mailGID: mailGID, chown: true,
	}, nil
}

func lookupFirst(names ...string) (*user.User, error) {
	var err error
	for _, n := range names {
		var u *user.User
		if u, err = user.Lookup(n); err == nil {
			return u, nil
		}
	}
	return nil, fmt.Errorf("none of the users %v exists: %w", names, err)
}
