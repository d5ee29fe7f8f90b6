package imapsrc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/migrate"
)

// Step names a step of opening a connection, for StepError.
type Step string

// The steps of opening a connection.
const (
	StepDial     Step = "dial"     // TCP connect
	StepTLS      Step = "tls"      // TLS handshake or STARTTLS, certificate check included
	StepGreeting Step = "greeting" // the server's first words
	StepAuth     Step = "auth"     // LOGIN or AUTHENTICATE, token source included
)

// StepError is an error opening a connection, with the step that failed:
// errors.As(err, &se) tells a wrong port (StepDial) from an untrusted
// certificate (StepTLS) or bad credentials (StepAuth). Its message is the
// underlying error's, and it keeps that error's kind (migrate.ErrMailbox
// or migrate.ErrTransient) for errors.Is.
type StepError struct {
	// Step is the step that failed.
	Step Step
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *StepError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(step Step, err error) error { return &StepError{Step: step, Err: err} }

// The authentication mechanisms of Options.AuthMechanism.
const (
	MechLogin       = "LOGIN"
	MechPlain       = "PLAIN"
	MechXOAuth2     = "XOAUTH2"
	MechOAuthBearer = "OAUTHBEARER"
)

// mechanism decides how to log in, from the options and what the server
// offers.
func (s *Source) mechanism(caps imap.CapSet) string {
	if m := strings.ToUpper(s.opts.AuthMechanism); m != "" {
		return m
	}
	switch {
	case s.opts.TokenSource != nil:
		if caps.Has(imap.AuthCap(sasl.OAuthBearer)) {
			return MechOAuthBearer
		}
		return MechXOAuth2
	case s.opts.AuthzID != "":
		return MechPlain
	case caps.Has(imap.CapLoginDisabled) && caps.Has(imap.AuthCap(sasl.Plain)):
		return MechPlain
	}
	return MechLogin
}

// authenticate logs in with the chosen mechanism and returns its name.
// With a token, a rejected login is tried once more with a token asked
// afresh.
func (s *Source) authenticate(ctx context.Context, c *imapclient.Client) (string, error) {
	mech := s.mechanism(c.Caps())
	switch mech {
	case MechLogin:
		return mech, c.Login(s.opts.Username, s.opts.Password).Wait()
	case MechPlain:
		return mech, c.Authenticate(sasl.NewPlainClient(s.opts.AuthzID, s.opts.Username, s.opts.Password))
	case MechXOAuth2, MechOAuthBearer:
		if s.opts.TokenSource == nil {
			return mech, migrate.MailboxError(fmt.Errorf("imapsrc: %s needs Options.TokenSource", mech))
		}
	default:
		return mech, migrate.MailboxError(fmt.Errorf("imapsrc: unknown AuthMechanism %q", mech))
	}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		tok, terr := s.opts.TokenSource.Token(ctx)
		if terr != nil {
			return mech, stepErr(StepAuth, migrate.MailboxError(fmt.Errorf("imapsrc: token source for %q: %w", s.opts.Username, terr)))
		}
		err = c.Authenticate(s.tokenClient(mech, tok))
		var ie *imap.Error
		if err == nil || !errors.As(err, &ie) || ie.Code == imap.ResponseCodeUnavailable {
			return mech, err
		}
		s.opts.Logger.Debug("imapsrc: token rejected", "source", s.String(), "mechanism", mech, "attempt", attempt+1)
	}
	return mech, err
}

// tokenClient returns the SASL client of a token mechanism.
func (s *Source) tokenClient(mech, token string) sasl.Client {
	if mech == MechXOAuth2 {
		return &xoauth2Client{user: s.opts.Username, token: token}
	}
	host, portStr, _ := net.SplitHostPort(s.opts.Addr)
	port, _ := strconv.Atoi(portStr)
	return &oauthBearerClient{user: s.opts.Username, token: token, host: host, port: port}
}

// xoauth2Client is Google's and Microsoft's XOAUTH2 mechanism
// (developers.google.com/gmail/imap/xoauth2-protocol). On failure the
// server sends a JSON challenge, which the client answers with an empty
// response so that the server can end the exchange with NO.
type xoauth2Client struct {
	user, token string
	failed      bool
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return MechXOAuth2, []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	if c.failed {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	c.failed = true
	return []byte{}, nil
}

// oauthBearerClient is RFC 7628's OAUTHBEARER. go-sasl's client cannot
// be used: on failure it returns an error instead of the dummy response
// (%x01) that RFC 7628 section 3.2.3 requires, and go-imap then waits
// forever for the server's final answer.
type oauthBearerClient struct {
	user, token, host string
	port              int
	failed            bool
}

func (c *oauthBearerClient) Start() (string, []byte, error) {
	var b strings.Builder
	b.WriteString("n,")
	if c.user != "" {
		b.WriteString("a=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user))
	}
	b.WriteString(",")
	if c.host != "" {
		b.WriteString("\x01host=" + c.host)
	}
	if c.port != 0 {
		b.WriteString("\x01port=" + strconv.Itoa(c.port))
	}
	b.WriteString("\x01auth=Bearer " + c.token + "\x01\x01")
	return MechOAuthBearer, []byte(b.String()), nil
}

func (c *oauthBearerClient) Next(challenge []byte) ([]byte, error) {
	if c.failed {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	c.failed = true // the challenge is a JSON error; the NO follows
	return []byte{0x01}, nil
}
