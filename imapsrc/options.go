package imapsrc

import (
	"crypto/tls"
	"log/slog"
	"time"
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
	DefaultDialTimeout = 30 * time.Second
	DefaultIOTimeout   = 2 * time.Minute
	DefaultFetchChunk  = 100
	// MaxReconnects is how many times in a row one operation reopens a
	// dropped connection without making progress before it gives up.
	MaxReconnects = 3
)

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
	// AuthzID, when set, authenticates with SASL PLAIN using Username and
	// Password as the authentication identity and AuthzID as the
	// authorization identity: the mailbox of AuthzID is opened with an
	// admin's credentials. Default: LOGIN as Username.
	AuthzID string
	// DialTimeout bounds connecting, including the TLS handshake.
	// Default: DefaultDialTimeout.
	DialTimeout time.Duration
	// IOTimeout bounds every single read and write on the connection; a
	// server silent for longer is treated as a dropped connection.
	// Default: DefaultIOTimeout.
	IOTimeout time.Duration
	// FetchChunk is how many UIDs one UID FETCH command asks for in Fetch.
	// Default: DefaultFetchChunk.
	FetchChunk int
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
	if r.FetchChunk <= 0 {
		r.FetchChunk = DefaultFetchChunk
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.TLSConfig != nil {
		r.TLSConfig = r.TLSConfig.Clone()
	}
	return r
}
