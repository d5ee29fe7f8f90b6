// Package exchange is a migrate.Sink that writes Exchange Online mailboxes
// through Microsoft Graph, with github.com/microsoftgraph/msgraph-sdk-go.
//
// One Client serves one tenant: it holds one msgraph request adapter, one
// token cache, one HTTP pipeline and one throttling budget per mailbox.
// Client.Mailbox returns the Sink for one user of that tenant:
//
//	cred, _ := azidentity.NewClientSecretCredential(tenantID, clientID, secret, nil)
//	c, _ := exchange.NewClient(&exchange.Options{Credential: cred})
//	sink := c.Mailbox("alice@contoso.com")
//
// # Authentication
//
// Options.Credential is any azcore.TokenCredential. For an unattended
// migration, use an app registration with application permissions and
// either a client secret (azidentity.NewClientSecretCredential) or, better
// for production, a certificate (azidentity.ParseCertificates and
// azidentity.NewClientCertificateCredential); see the examples of
// NewClient. The Client asks for "https://graph.microsoft.com/.default",
// caches the token, renews it five minutes before it expires and once more
// when Graph answers 401, and answers Continuous Access Evaluation claims
// challenges. Tokens never appear in errors or logs.
//
// # Permissions
//
// The app registration needs these Microsoft Graph application
// permissions, with admin consent (an application access policy can
// restrict them to the migrated mailboxes):
//
//   - Mail-Advanced.ReadWrite.All: Put of messages up to MaxImportSize,
//     which imports their MIME with POST .../mailFolders/{id}/importMime
//     (beta, https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta).
//     Not needed when Options.ReceivedDates is ReceivedDateFromSource and
//     no source message is a draft.
//   - Mail.ReadWrite: everything else: EnsureFolder, drafts, the JSON
//     create of large messages with their attachments and upload sessions,
//     the flag and watermark PATCH after an import, SetFlags,
//     SetFlagsBatch ($batch), FindWatermark and FindMessageID.
//
// # Throttling and retries
//
// Exchange Online throttles per app per mailbox: 4 concurrent requests,
// 10,000 requests per 10 minutes, 150 MB of upload per 5 minutes
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
// The Client paces each mailbox to Options.Budget (DefaultBudget: those
// limits) before Graph has to say no: a semaphore for concurrency and two
// token buckets for requests and upload bytes; see Budget.
//
// What still comes back as 429, 503 or 504, and dropped connections, is
// retried in one place, a RoundTripper at the bottom of the HTTP pipeline
// (msgraph-sdk-go's own RetryHandler is left out, so that retries are never
// multiplied), after Retry-After or an exponential backoff, Options.MaxRetries
// times. A Retry-After pauses every request of that mailbox, not only the
// refused one, and each such answer is reported to the Mailbox's observer
// (migrate.Observable) as a migrate.EventThrottled. $batch sub-responses,
// which no middleware sees, are retried by SetFlagsBatch the same way. A
// creating POST whose answer was lost (connection dropped, 504) is not
// sent again before Put has looked for the item it may have created.
//
// # Dates
//
// Graph cannot give an item both its exact MIME and the source's received
// date; Options.ReceivedDates chooses, see ReceivedDates. The default
// keeps the MIME byte for byte for every message up to MaxImportSize (3 MB),
// received at import time; larger messages always keep their received
// date and lose their exact MIME (see Put).
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
//     item's fields: the stored MIME is not the source's (see Put for what
//     it keeps).
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
// migrate.WatermarkFinder, migrate.MessageIDFinder and migrate.Observable.
// It is safe for concurrent use, including concurrent Puts: whatever the
// number of callers, its requests are paced to the Client's Budget (4 in
// flight by default), so 4 Puts at a time (migrate.Options.PutsPerMailbox)
// keep it busy and more only wait. Every Mailbox of one Client for the
// same user shares that budget.
type Mailbox struct {
	c    *Client
	user string

	pacer *pacer // shared with every Mailbox of c for the same user

	mu      sync.Mutex
	folders map[folderKey]string // EnsureFolder's cache

	obsMu    sync.Mutex
	observer func(migrate.Event)
}

var (
	_ migrate.Sink            = (*Mailbox)(nil)
	_ migrate.FlagSetter      = (*Mailbox)(nil)
	_ migrate.BatchFlagSetter = (*Mailbox)(nil)
	_ migrate.WatermarkFinder = (*Mailbox)(nil)
	_ migrate.MessageIDFinder = (*Mailbox)(nil)
	_ migrate.Observable      = (*Mailbox)(nil)
)

// User returns the user id or principal name the Mailbox was made for.
func (mb *Mailbox) User() string { return mb.user }
