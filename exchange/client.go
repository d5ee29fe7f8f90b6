package exchange

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/mailferry/mailferry/internal/backoff"
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

	// Transport is the RoundTripper under the pacer and retries, the one
	// that reaches the network; nil means a clone of
	// http.DefaultTransport. The Client builds its own http.Client around
	// it, with no overall timeout, since every call is bounded by its
	// context instead.
	Transport http.RoundTripper

	// Logger receives retries and other notable events. Tokens never
	// appear in it. Default: no logging.
	Logger *slog.Logger

	// MaxRetries is how many times one request is retried after a
	// throttling answer (429), a 503 or 504, or a dropped connection,
	// before its error reaches the caller marked migrate.ErrTransient.
	// Zero means 5; a negative value disables retries.
	MaxRetries int

	// Budget is the share of Exchange Online's per-app-per-mailbox limits
	// that the Client paces each mailbox's requests to. nil means
	// DefaultBudget(), Microsoft's documented limits; &Budget{} turns
	// pacing off (for an emulator without budgets). See Budget.
	Budget *Budget

	// ReceivedDates chooses between a byte-identical MIME and the source's
	// received date for messages that importMime could take. Default
	// ReceivedDateAtImport. See ReceivedDates.
	ReceivedDates ReceivedDates
}

// ReceivedDates chooses how Put creates messages, which decides the
// received date ("Received" in Outlook, receivedDateTime in Graph) they
// get. Microsoft Graph offers no way to have both the exact MIME and the
// source's received date:
//
//   - importMime (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta)
//     keeps the MIME byte for byte but takes nothing but the MIME, so the
//     received date is the time of the import; and PidTagMessageDeliveryTime,
//     which holds it, can be set only when an item is first saved
//     (MS-OXCMSG 2.2.3.9 for PidTagMessageFlags; Exchange treats the
//     delivery time the same way), not by a later PATCH.
//   - A JSON create (https://learn.microsoft.com/graph/api/user-post-messages)
//     can set PidTagMessageDeliveryTime at creation, so the received date is
//     the source's INTERNALDATE, but Exchange then builds the MIME from the
//     item's fields: the stored MIME is not the source's (the package
//     documentation's Fidelity section says what it keeps).
//
// Either way the sent date is the message's Date header.
type ReceivedDates int

const (
	// ReceivedDateAtImport imports every message that fits in one request
	// (MaxImportSize) with importMime, byte for byte, received at the time
	// of the import; larger messages, which importMime cannot take, go
	// through the JSON create and keep their received date. The default:
	// a migration is judged first on content that is exactly the source's.
	ReceivedDateAtImport ReceivedDates = iota
	// ReceivedDateFromSource creates every message with the JSON create,
	// so that every received date is the source's INTERNALDATE, at the
	// cost of a MIME that Exchange rebuilds from the fields. Drafts that
	// fit keep their MIME (they have no received date to keep).
	ReceivedDateFromSource
)

// String returns the policy's name.
func (r ReceivedDates) String() string {
	switch r {
	case ReceivedDateAtImport:
		return "at-import"
	case ReceivedDateFromSource:
		return "from-source"
	}
	return "ReceivedDates(" + strconv.Itoa(int(r)) + ")"
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
	budget  *Budget
	dates   ReceivedDates
	// upload sends the PUTs of upload sessions: through retryTransport
	// (pacing, retries) but not the request adapter, since an upload URL
	// is pre-authenticated and must not carry the Authorization header
	// (https://learn.microsoft.com/graph/api/attachment-createuploadsession).
	upload *http.Client

	pacersMu sync.Mutex
	pacers   map[string]*pacer // by lower-cased user
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
	baseTransport := o.Transport
	if baseTransport == nil {
		baseTransport = http.DefaultTransport.(*http.Transport).Clone()
	}

	tokens := newTokenSource(o.Credential, u.Scheme+"://"+u.Host+"/.default")
	rt := &retryTransport{
		base:       baseTransport,
		tokens:     tokens,
		maxRetries: maxRetries,
		logger:     logger,
		backoff:    backoff.Policy{Min: 500 * time.Millisecond, Max: 30 * time.Second},
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
	budget := o.Budget
	if budget == nil {
		budget = DefaultBudget()
	}
	b := *budget
	return &Client{
		graph:   msgraphsdk.NewGraphServiceClient(adapter),
		adapter: adapter,
		baseURL: base,
		logger:  logger,
		tokens:  tokens,
		retry:   rt,
		budget:  &b,
		dates:   o.ReceivedDates,
		upload: &http.Client{Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		pacers: map[string]*pacer{},
	}, nil
}

// pipeline returns msgraph-sdk-go's default middleware (Graph telemetry,
// the /me URL replacement, and kiota's defaults) minus kiota's
// RetryHandler, in a fixed order: retries belong to retryTransport alone.
// Compression stays, with kiota's CompressionHandler replaced by
// compressionHandler, which reuses its gzip writers: request bodies are
// gzipped (Graph accepts Content-Encoding: gzip) and retryTransport
// replays the compressed bytes.
func pipeline() []khttp.Middleware {
	opts := msgraphsdk.GetDefaultClientOptions()
	return []khttp.Middleware{
		msgraphcore.NewGraphTelemetryHandler(&opts),
		khttp.NewUrlReplaceHandler(true, msgraphcore.ReplacementPairs),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		khttp.NewHeadersInspectionHandler(),
		khttp.NewRedirectHandler(),
		compressionHandler{},
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
	return &Mailbox{c: c, user: user, folders: map[folderKey]string{}, pacer: c.pacerFor(user)}
}

// Mailbox is one user's Exchange Online mailbox as a migrate.Sink. It also
// implements migrate.FlagSetter, migrate.BatchFlagSetter,
// migrate.WatermarkFinder and migrate.MessageIDFinder, and reports
// throttling through the context of each call (migrate.Notify).
// It is safe for concurrent use, including concurrent Puts: whatever the
// number of callers, its requests are paced to the Client's Budget (4 in
// flight by default), so 4 Puts at a time
// (migrate.Options.MaxPutsPerMailbox) keep it busy and more only wait.
// Every Mailbox of one Client for the same user shares that budget.
type Mailbox struct {
	c    *Client
	user string

	pacer *pacer // shared with every Mailbox of c for the same user

	mu      sync.Mutex
	folders map[folderKey]string // EnsureFolder's cache
}

var (
	_ migrate.Sink            = (*Mailbox)(nil)
	_ migrate.FlagSetter      = (*Mailbox)(nil)
	_ migrate.BatchFlagSetter = (*Mailbox)(nil)
	_ migrate.WatermarkFinder = (*Mailbox)(nil)
	_ migrate.MessageIDFinder = (*Mailbox)(nil)
)

// User returns the user id or principal name the Mailbox was made for.
func (mb *Mailbox) User() string { return mb.user }
