package imapsrc

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// Security is how a Source protects its connection.
type Security int

const (
	// TLS is implicit TLS from the first byte (port 993). It is the default.
	TLS Security = iota
	// StartTLS connects in plaintext and upgrades with STARTTLS before
	// authenticating (port 143). A server that does not offer STARTTLS is
	// refused.
	StartTLS
	// Plaintext sends everything, password included, unencrypted. Use it
	// only on trusted links such as loopback test servers; it is never
	// chosen implicitly.
	Plaintext
)

// String returns "tls", "starttls" or "plaintext".
func (s Security) String() string {
	switch s {
	case TLS:
		return "tls"
	case StartTLS:
		return "starttls"
	case Plaintext:
		return "plaintext"
	}
	return "unknown"
}

// The defaults of the Options fields.
const (
	DefaultDialTimeout     = 30 * time.Second
	DefaultIOTimeout       = 2 * time.Minute
	DefaultMaxUIDsPerFetch = 100
	// DefaultMaxBytesInFlight bounds the bytes of message bodies that
	// Fetch has asked for and not yet handed to its callback.
	DefaultMaxBytesInFlight = 32 << 20
	// DefaultMaxMessageSize is the largest message Fetch hands over:
	// Exchange Online takes messages of up to 150 MB
	// (https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#message-limits),
	// and 10 MB more allows for a source's different line endings or
	// encoding of the same message.
	DefaultMaxMessageSize = 160 << 20
	// DefaultReconnectFor is how long an operation waits for a server
	// that cannot be reached: long enough for a server's restart, a load
	// balancer's failover or a network blip, short enough that a server
	// gone for good fails the run in minutes.
	DefaultReconnectFor = 2 * time.Minute
)

// MaxReconnects is how many times in a row one operation reopens a
// connection that was made and dropped again, while the operation
// completed nothing in between (a server that crashes on one particular
// message), before it gives up with an error matching
// migrate.ErrTransient. Attempts that cannot reach the server at all do
// not count against it: Options.ReconnectFor bounds those.
const MaxReconnects = 3

// Options configures a Source. A nil *Options is not valid for New (the
// address and credentials are required), but every other zero field means
// its documented default.
type Options struct {
	// Addr is the server's "host:port".
	Addr string
	// Security is TLS (the default), StartTLS or Plaintext.
	Security Security
	// TLSConfig customises TLS and STARTTLS (custom roots, server name,
	// client certificates). Default: system roots, ServerName from Addr.
	TLSConfig *tls.Config
	// Username and Password are the login credentials. With a Dovecot
	// master user, Username is "user*master" and Password the master's.
	Username, Password string
	// TokenSource, when set, authenticates with an OAuth 2.0 access token
	// (SASL XOAUTH2 or OAUTHBEARER) for Username instead of Password. It is
	// asked for a token at every login; when the server rejects a token,
	// it is asked once more (a TokenSource that caches tokens should
	// return a fresh one then) before the login fails.
	TokenSource TokenSource
	// AuthMechanism forces the login method: "LOGIN", "PLAIN", "XOAUTH2"
	// or "OAUTHBEARER". Default: with a TokenSource, OAUTHBEARER if the
	// server offers it, else XOAUTH2; with AuthzID, PLAIN; otherwise LOGIN,
	// or PLAIN when the server announces LOGINDISABLED.
	AuthMechanism string
	// AuthzID, when set, authenticates with SASL PLAIN using Username and
	// Password as the authentication identity and AuthzID as the
	// authorization identity: the mailbox of AuthzID is opened with an
	// admin's credentials. Default: LOGIN as Username.
	AuthzID string
	// UserRoot, when set, is the folder under which the mailbox's folders
	// live when an admin reads another user's tree (the UserRoot column of
	// Exchange's migration CSV, such as "users/alice"): only folders below
	// it are listed, and Folder.Path is relative to it.
	UserRoot string
	// SubscribedOnly lists only subscribed folders (LIST (SUBSCRIBED),
	// which needs LIST-EXTENDED or IMAP4rev2). Default: every folder.
	SubscribedOnly bool
	// MaxConnections is how many connections the Source may open, and so
	// how many of its operations run at once. Default 1.
	MaxConnections int
	// ServerLimit, when set, caps the connections open to one server
	// across every Source that shares it (a batch's mailboxes on one
	// provider). Default: no cap beyond MaxConnections.
	ServerLimit *ServerLimit
	// DialContext opens the TCP connection (a SOCKS dialer, a test's
	// counting dialer). Default: a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds connecting, including the TLS handshake.
	// Default: DefaultDialTimeout.
	DialTimeout time.Duration
	// IOTimeout bounds every single read and write on the connection; a
	// server silent for longer is treated as a dropped connection.
	// Default: DefaultIOTimeout.
	IOTimeout time.Duration
	// ReconnectFor is how long an operation keeps trying to reach a
	// server that cannot be reached, before it fails with an error
	// matching migrate.ErrTransient. A server cannot be reached when
	// connecting fails for a reason that may pass: the connection refused,
	// reset or timed out, the TLS handshake or the greeting cut off, a
	// login answered [UNAVAILABLE]. Attempts follow each other at once,
	// then after pauses of 100 ms doubling up to 5 s, each jittered into
	// its upper half so that the many connections a server restart drops
	// do not all come back in the same instant. The time runs from the
	// first failed attempt and starts again once a connection is made;
	// the Source's operations share it, so while the server stays down an
	// operation that begins right after another gave up fails after a
	// single attempt. A refused login (a wrong password) or a TLS certificate
	// that fails verification is never retried, and a connection that is
	// made and lost again and again is bounded by MaxReconnects instead.
	// The Probe method and function do not wait: they report the first
	// failure. Default: DefaultReconnectFor.
	ReconnectFor time.Duration
	// MaxUIDsPerFetch is how many UIDs one UID FETCH command asks for in
	// Fetch. Default: DefaultMaxUIDsPerFetch.
	MaxUIDsPerFetch int
	// MaxBytesInFlight bounds the bytes Fetch has requested from the server
	// and not yet handed to its callback: further UID FETCH commands are
	// sent ahead (pipelined) only within this budget. Sizes are estimated
	// from the folder's Bytes and Messages, then from the messages seen.
	// Default: DefaultMaxBytesInFlight.
	MaxBytesInFlight int64
	// MaxMessageSize is the largest message body Fetch hands to its
	// callback; a larger one (whatever RFC822.SIZE the server declared)
	// fails to read with an error matching ErrMessageTooLarge and
	// migrate.ErrItem, and Fetch goes on with the next message. It keeps a
	// broken or hostile server from making the caller read without end.
	// Default: DefaultMaxMessageSize.
	MaxMessageSize int64
	// RoleNames maps folder names to the role a folder of that name has
	// when it has no SPECIAL-USE role and no folder claims that role with a
	// SPECIAL-USE attribute. Names are matched case-insensitively against
	// the folder's path below the personal namespace (or UserRoot), levels
	// joined with "/" ("sent", "[gmail]/sent mail"). The Source keeps its
	// own copy. Default (nil): DefaultRoleNames(); an empty map derives no
	// role from names.
	RoleNames map[string]migrate.Role
	// Logger receives connection events (connect, reconnect, errors) at
	// debug and warn levels. Passwords are never logged. Default: no logs.
	Logger *slog.Logger
}

// withDefaults returns a copy of o with defaults filled in.
func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = DefaultDialTimeout
	}
	if r.IOTimeout <= 0 {
		r.IOTimeout = DefaultIOTimeout
	}
	if r.ReconnectFor <= 0 {
		r.ReconnectFor = DefaultReconnectFor
	}
	if r.MaxUIDsPerFetch <= 0 {
		r.MaxUIDsPerFetch = DefaultMaxUIDsPerFetch
	}
	if r.MaxBytesInFlight <= 0 {
		r.MaxBytesInFlight = DefaultMaxBytesInFlight
	}
	if r.MaxMessageSize <= 0 {
		r.MaxMessageSize = DefaultMaxMessageSize
	}
	if r.MaxConnections <= 0 {
		r.MaxConnections = 1
	}
	if r.RoleNames == nil {
		r.RoleNames = DefaultRoleNames()
	} else {
		names := make(map[string]migrate.Role, len(r.RoleNames))
		for name, role := range r.RoleNames {
			names[strings.ToLower(name)] = role
		}
		r.RoleNames = names
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.TLSConfig != nil {
		r.TLSConfig = r.TLSConfig.Clone()
	}
	return r
}

// A TokenSource supplies OAuth 2.0 access tokens for XOAUTH2 and
// OAUTHBEARER logins. It may be called from several goroutines at once.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenSourceFunc adapts a function to a TokenSource.
type TokenSourceFunc func(ctx context.Context) (string, error)

// Token calls f.
func (f TokenSourceFunc) Token(ctx context.Context) (string, error) { return f(ctx) }
