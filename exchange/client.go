package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
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

	// ReceivedDates chooses what a message keeps when the tenant cannot
	// give it both its exact MIME and its received date. Default
	// ReceivedDateFromSource: the received date. See ReceivedDates.
	ReceivedDates ReceivedDates

	// Keywords translates IMAP keywords into Outlook categories, for Put,
	// SetFlags and SetFlagsBatch: each key is a keyword, compared
	// case-insensitively, and its value the category it becomes, or ""
	// to leave it out. Keywords it does not name become categories of the
	// same name, except those that start with '$', which are left out.
	// nil means DefaultKeywords(), which the caller may copy and change
	// (an empty map turns every translation off). A category must not
	// start with '\' or '$' (NewClient refuses it). The Client keeps its
	// own copy. $Forwarded sets the "forwarded" last verb whatever the
	// table says (see Mailbox.SetFlags).
	Keywords map[string]string
}

// ReceivedDates chooses what Put gives up when Exchange Online cannot give
// a message both its exact MIME and its received date ("Received" in
// Outlook, receivedDateTime in Graph, by which Outlook orders every
// folder):
//
//   - importMime (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta)
//     keeps the MIME byte for byte but takes nothing but the MIME, so the
//     received date is the time of the import, unless the PATCH that
//     follows the import can set PidTagMessageDeliveryTime (0x0E06).
//     Whether Exchange honours that on a delivered item is undocumented
//     (MS-OXCMSG makes PidTagMessageFlags read-only after the first save;
//     no Microsoft page says whether the delivery time is), so the Client
//     finds out, once per tenant (Mailbox.ProbeReceivedDates).
//   - The JSON create (https://learn.microsoft.com/graph/api/user-post-messages)
//     sets PidTagMessageDeliveryTime at creation, so the received date is
//     the source's INTERNALDATE, in one request where importMime and its
//     PATCH take two, but Exchange builds the MIME from the item's fields:
//     the stored MIME is not the source's (the package documentation's
//     Fidelity section says what it keeps).
//
// Under ReceivedDateFromSource, the default, Put routes a non-draft
// message of at most MaxImportSize bytes so:
//
//  1. When the tenant honours the delivery-time PATCH, through importMime
//     with that PATCH: exact MIME and exact received date.
//  2. Otherwise, when its MIME must stay intact, signed or encrypted
//     (S/MIME or PGP/MIME, known from its top-level Content-Type), through
//     importMime, received at the time of the import: rebuilt, it would
//     lose its signature or its encrypted structure, which is worse than
//     a wrong date.
//  3. Otherwise through the JSON create: exact received date, rebuilt
//     MIME.
//
// Under ReceivedDateAtImport every such message goes through importMime,
// received at the time of the import, and the tenant is not probed.
// Larger messages, which importMime cannot take, always go through the
// JSON create and keep their received date; drafts that fit are created
// from their MIME (they have no received date). Either way the sent date
// is the message's Date header. Put reports what the run's messages get
// as a migrate.EventNotice (see Mailbox.Put).
type ReceivedDates int

const (
	// ReceivedDateFromSource keeps every received date, and the exact MIME
	// as well where the tenant allows both (see above); where it does not,
	// messages that need not keep their MIME intact are rebuilt by the
	// JSON create. The default: Outlook orders folders by received date,
	// and a mailbox whose ten years of mail all show "received today" is
	// not usable.
	ReceivedDateFromSource ReceivedDates = iota
	// ReceivedDateAtImport keeps the MIME of every message up to
	// MaxImportSize byte for byte through importMime, and gives up their
	// received dates: they show the time of the import. It runs no probe
	// (see Mailbox.ProbeReceivedDates), so it writes nothing to the
	// mailbox but the messages (it still removes the scratch folders that
	// an earlier process, killed while it probed, left behind), and needs
	// no rebuilt message at all,
	// for a migration judged first on content identical to the source's.
	// On a tenant that honours the delivery-time PATCH, the default gives
	// the same MIME and the received dates as well.
	ReceivedDateAtImport
)

// String returns the policy's name: "from-source" or "at-import".
func (r ReceivedDates) String() string {
	switch r {
	case ReceivedDateFromSource:
		return "from-source"
	case ReceivedDateAtImport:
		return "at-import"
	}
	return "ReceivedDates(" + strconv.Itoa(int(r)) + ")"
}

// rebuildsForDate reports whether Put creates raw, a non-draft message
// that importMime could take, from JSON to keep its received date: under
// ReceivedDateFromSource, when its MIME need not stay intact
// (mustKeepMIME) and the tenant does not honour the delivery-time PATCH
// (deliveryTimeSettable). See ReceivedDates.
func (mb *Mailbox) rebuildsForDate(ctx context.Context, raw []byte) bool {
	return mb.c.dates == ReceivedDateFromSource && !mustKeepMIME(raw) && !mb.deliveryTimeSettable(ctx)
}

// mustKeepMIME reports whether raw is signed or encrypted, with S/MIME or
// PGP/MIME, by its top-level Content-Type alone: multipart/signed and
// multipart/encrypted (RFC 1847, used by S/MIME, RFC 8551, and PGP/MIME,
// RFC 3156), application/pkcs7-mime and application/pkcs7-signature
// (RFC 8551) and their older x- forms, application/pgp-encrypted and
// application/pgp-signature (RFC 3156), and the older application/pgp.
// Rebuilt from JSON, such a message would lose its valid signature or
// become an item with the encrypted part as attachment. Signed or
// encrypted parts nested deeper (a signed message forwarded as an
// attachment) and inline PGP are not looked for: the check reads only
// the header, and costs nothing next to a request.
func mustKeepMIME(raw []byte) bool {
	ct := headerField(raw, "Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(ct, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	switch mt {
	case "multipart/signed", "multipart/encrypted",
		"application/pkcs7-mime", "application/x-pkcs7-mime",
		"application/pkcs7-signature", "application/x-pkcs7-signature",
		"application/pgp-encrypted", "application/pgp-signature", "application/pgp":
		return true
	}
	return false
}

// headerField returns the value of the first field called name (compared
// case-insensitively) in the header of raw, which ends at the first empty
// line, unfolded and trimmed; "" when there is none.
func headerField(raw []byte, name string) string {
	var val []byte
	found := false
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			return strings.TrimSpace(string(val))
		case line[0] == ' ' || line[0] == '\t':
			if found {
				val = append(val, line...)
			}
			continue
		case found:
			return strings.TrimSpace(string(val))
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(bytes.TrimSpace(k)), name) {
			found = true
			val = append(val, v...)
		}
	}
	return strings.TrimSpace(string(val))
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
	// keywords is Options.Keywords, ready for look-ups.
	keywords keywordTable
	// probe is the tenant's answer to the received-date probe
	// (Mailbox.ProbeReceivedDates), learnt once.
	probe dateProbe
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
	if o.ReceivedDates != ReceivedDateFromSource && o.ReceivedDates != ReceivedDateAtImport {
		return nil, fmt.Errorf("exchange: invalid Options.ReceivedDates %v", o.ReceivedDates)
	}
	keywords, err := newKeywordTable(o.Keywords)
	if err != nil {
		return nil, err
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
		graph:    newGraphClient(adapter),
		adapter:  adapter,
		baseURL:  base,
		logger:   logger,
		tokens:   tokens,
		retry:    rt,
		budget:   &b,
		dates:    o.ReceivedDates,
		keywords: keywords,
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
