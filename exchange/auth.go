package exchange

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	abstractions "github.com/microsoft/kiota-abstractions-go"
)

// tokenEarlyRenewal is how long before its expiry a cached token is
// replaced, so that a request never leaves with a token about to expire.
const tokenEarlyRenewal = 5 * time.Minute

// tokenSource caches one access token for one scope. It is safe for
// concurrent use; concurrent callers that find no valid token wait for a
// single GetToken call instead of each making their own.
//
// The token is a secret: it leaves tokenSource only for the Authorization
// header, and no error or log message built in this package contains it.
type tokenSource struct {
	cred  azcore.TokenCredential
	scope string
	now   func() time.Time // nil means time.Now

	// lock is a mutex that a waiter can give up on when its context ends:
	// send to lock, receive to unlock.
	lock chan struct{}
	tok  azcore.AccessToken // zero when none is cached; guarded by lock
}

func newTokenSource(cred azcore.TokenCredential, scope string) *tokenSource {
	return &tokenSource{cred: cred, scope: scope, lock: make(chan struct{}, 1)}
}

func (s *tokenSource) acquire(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("get token: %w", ctx.Err())
	}
}

func (s *tokenSource) release() { <-s.lock }

func (s *tokenSource) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// token returns a cached token that is valid for at least
// tokenEarlyRenewal more, or gets a new one.
func (s *tokenSource) token(ctx context.Context) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	if s.tok.Token != "" && s.clock().Add(tokenEarlyRenewal).Before(s.tok.ExpiresOn) {
		return s.tok.Token, nil
	}
	return s.fetchLocked(ctx, "")
}

// renew drops the cached token if it is still stale (the one a request was
// refused with: a concurrent caller may have renewed it already) and
// returns a valid one.
func (s *tokenSource) renew(ctx context.Context, stale string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	if s.tok.Token != "" && s.tok.Token != stale && s.clock().Add(tokenEarlyRenewal).Before(s.tok.ExpiresOn) {
		return s.tok.Token, nil
	}
	s.tok = azcore.AccessToken{}
	return s.fetchLocked(ctx, "")
}

// withClaims gets a token that satisfies a Continuous Access Evaluation
// claims challenge, and caches it.
func (s *tokenSource) withClaims(ctx context.Context, claims string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	s.tok = azcore.AccessToken{}
	return s.fetchLocked(ctx, claims)
}

func (s *tokenSource) fetchLocked(ctx context.Context, claims string) (string, error) {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{
		Scopes:    []string{s.scope},
		Claims:    claims,
		EnableCAE: true, // the request adapter answers claims challenges
	})
	if err != nil {
		return "", &tokenError{fmt.Errorf("get token for %s: %w", s.scope, err)}
	}
	if tok.Token == "" {
		return "", &tokenError{errors.New("get token for " + s.scope + ": credential returned an empty token")}
	}
	s.tok = tok
	return tok.Token, nil
}

// authProvider is the kiota AuthenticationProvider of the Client's request
// adapter: it sets "Authorization: Bearer <token>" from the tokenSource.
//
// It replaces kiota-authentication-azure-go, which refuses plain http URLs
// other than localhost and needs a list of allowed hosts: this one sends
// the token to exactly one host, the BaseURL's (over https, or plain http
// on a loopback address, as NewClient checks), and to no other.
type authProvider struct {
	tokens *tokenSource
	host   string // host[:port] of BaseURL
}

// AuthenticateRequest implements authentication.AuthenticationProvider.
func (p *authProvider) AuthenticateRequest(ctx context.Context, req *abstractions.RequestInformation, extra map[string]any) error {
	if req == nil {
		return errors.New("exchange: authenticate: nil request")
	}
	uri, err := req.GetUri()
	if err != nil {
		return fmt.Errorf("exchange: authenticate: %w", err)
	}
	if !strings.EqualFold(uri.Host, p.host) {
		// Never hand the token to another host (an @odata.nextLink or a
		// redirect elsewhere, for instance).
		req.Headers.Remove("Authorization")
		return nil
	}
	var tok string
	if claims, _ := extra["claims"].(string); claims != "" {
		tok, err = p.tokens.withClaims(ctx, claims)
	} else {
		tok, err = p.tokens.token(ctx)
	}
	if err != nil {
		return err
	}
	req.Headers.Remove("Authorization")
	req.Headers.Add("Authorization", "Bearer "+tok)
	return nil
}
