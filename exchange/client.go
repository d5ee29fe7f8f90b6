// Package exchange is a migrate.Sink that writes Exchange Online mailboxes
// through Microsoft Graph, with github.com/microsoftgraph/msgraph-sdk-go.
//
// One Client serves one tenant: it holds one msgraph request adapter, one
// token cache and one HTTP pipeline. Client.Mailbox returns the Sink for
// one user of that tenant:
//
//	cred, _ := azidentity.NewClientSecretCredential(tenantID, clientID, secret, nil)
//	c, _ := exchange.NewClient(&exchange.Options{Credential: cred})
//	sink := c.Mailbox("alice@contoso.com")
//
// # Permissions
//
// The app registration needs these Microsoft Graph application permissions
// (admin consent):
//
//   - Mail.ReadWrite: folders (EnsureFolder), flags (SetFlags) and look-ups
//     (FindWatermark, FindMessageID).
//   - Mail-Advanced.ReadWrite.All: Put, which imports MIME with
//     POST /users/{id}/mailFolders/{id}/importMime (beta)
//     (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta).
//
// # Retries
//
// Throttling (429), 503, 504 and dropped connections are retried in one
// place, a RoundTripper at the bottom of the HTTP pipeline; see Options.
// msgraph-sdk-go's own RetryHandler is left out of the pipeline so that
// retries are never multiplied.
//
// # Limitations
//
// This version imports messages of at most 3 MB of MIME (4 MB once base64
// encoded, Graph's request limit); larger ones fail with migrate.ErrItem.
// importMime does not take a received date, so the received date is the
// import time rather than the source's INTERNALDATE.
package exchange

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/mailferry/mailferry/migrate"
)

// defaultBaseURL is Microsoft Graph's global endpoint.
const defaultBaseURL = "https://graph.microsoft.com"

// Options configures a Client. Only Credential is required.
type Options struct {
	// Credential obtains the access tokens, for example an
	// azidentity.ClientSecretCredential of the app registration. It is
	// asked for the scope "<scheme>://<BaseURL host>/.default"
	// ("https://graph.microsoft.com/.default" by default). Required.
	Credential azcore.TokenCredential

	// BaseURL is the root of the Graph service, without a version; the
	// v1.0 and beta endpoints are built from it. Default
	// "https://graph.microsoft.com". Plain http is accepted only for a
	// loopback host (a local emulator such as exchangetest), so that a
	// token is never sent in clear over a network.
	BaseURL string

	// HTTPClient provides the base transport (its Transport; nil means
	// http.DefaultTransport). Its other fields are not used: the Client
	// builds its own http.Client around that transport, with no overall
	// timeout, since every call is bounded by its context instead.
	// Default: http.DefaultClient's transport.
	HTTPClient *http.Client

	// Logger receives retries and other notable events. Tokens never
	// appear in it. Default: no logging.
	Logger *slog.Logger

	// MaxRetries is how many times one request is retried after a
	// throttling answer (429), a 503 or 504, or a dropped connection,
	// before its error reaches the caller marked migrate.ErrTransient.
	// Zero means 5; a negative value disables retries.
	MaxRetries int
}

// Client is a connection to one tenant's Microsoft Graph. It is safe for
// concurrent use; create one per tenant and share it.
type Client struct {
	graph   *msgraphsdk.GraphServiceClient
	adapter *msgraphsdk.GraphRequestAdapter
	baseURL string // no trailing slash, no version
	logger  *slog.Logger
	tokens  *tokenSource
	retry   *retryTransport
}

// NewClient returns a Client for the tenant that opts.Credential signs in
// to. It builds one msgraph request adapter over an HTTP pipeline made of
// kiota's default middleware without its RetryHandler, above this
// package's retrying transport.
func NewClient(opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Credential == nil {
		return nil, errors.New("exchange: Options.Credential is required")
	}
	base := strings.TrimRight(o.BaseURL, "/")
	if base == "" {
		base = defaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("exchange: invalid BaseURL %q", o.BaseURL)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("exchange: BaseURL %q: plain http is only allowed for a loopback host", o.BaseURL)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxRetries := o.MaxRetries
	switch {
	case maxRetries == 0:
		maxRetries = 5
	case maxRetries < 0:
		maxRetries = 0
	}
	var baseTransport http.RoundTripper
	if o.HTTPClient != nil {
		baseTransport = o.HTTPClient.Transport
	}
	if baseTransport == nil {
		baseTransport = http.DefaultTransport
	}

	tokens := newTokenSource(o.Credential, u.Scheme+"://"+u.Host+"/.default")
	rt := &retryTransport{
		base:       baseTransport,
		tokens:     tokens,
		maxRetries: maxRetries,
		logger:     logger,
		minBackoff: 500 * time.Millisecond,
		maxBackoff: 30 * time.Second,
	}
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(rt, pipeline()...),
		// The RedirectHandler middleware follows redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	auth := &authProvider{tokens: tokens, host: u.Host}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("exchange: request adapter: %w", err)
	}
	adapter.SetBaseUrl(base + "/v1.0")
	return &Client{
		graph:   msgraphsdk.NewGraphServiceClient(adapter),
		adapter: adapter,
		baseURL: base,
		logger:  logger,
		tokens:  tokens,
		retry:   rt,
	}, nil
}

// pipeline returns msgraph-sdk-go's default middleware (Graph telemetry,
// the /me URL replacement, and kiota's defaults) minus kiota's
// RetryHandler, in a fixed order: retries belong to retryTransport alone.
// Compression stays: request bodies are gzipped (Graph accepts
// Content-Encoding: gzip) and retryTransport replays the compressed bytes.
func pipeline() []khttp.Middleware {
	opts := msgraphsdk.GetDefaultClientOptions()
	return []khttp.Middleware{
		msgraphcore.NewGraphTelemetryHandler(&opts),
		khttp.NewUrlReplaceHandler(true, msgraphcore.ReplacementPairs),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		khttp.NewHeadersInspectionHandler(),
		khttp.NewRedirectHandler(),
		khttp.NewCompressionHandler(),
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Mailbox returns the Sink for user, given as an Entra object id or a user
// principal name ("alice@contoso.com"). It does not call Graph: a missing or
// unlicensed mailbox shows on the first call, as an error matching
// migrate.ErrMailbox.
func (c *Client) Mailbox(user string) *Mailbox {
	return &Mailbox{c: c, user: user, folders: map[folderKey]string{}}
}

// Mailbox is one user's Exchange Online mailbox as a migrate.Sink. It also
// implements migrate.FlagSetter, migrate.WatermarkFinder and
// migrate.MessageIDFinder. It is safe for concurrent use, including
// concurrent Puts; Exchange Online allows 4 concurrent requests per app
// per mailbox and throttles beyond that (retried here, but costly), so
// callers should keep at most 4 calls in flight per mailbox.
type Mailbox struct {
	c    *Client
	user string

	mu      sync.Mutex
	folders map[folderKey]string // EnsureFolder's cache
}

var (
	_ migrate.Sink            = (*Mailbox)(nil)
	_ migrate.FlagSetter      = (*Mailbox)(nil)
	_ migrate.WatermarkFinder = (*Mailbox)(nil)
	_ migrate.MessageIDFinder = (*Mailbox)(nil)
)

// User returns the user id or principal name the Mailbox was made for.
func (mb *Mailbox) User() string { return mb.user }
