package exchange

import "time"

// Budget is the share of Exchange Online's throttling limits that one
// Client uses for one mailbox. Exchange Online counts per app per mailbox
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits):
// 4 concurrent requests, 10,000 requests per 10 minutes and 150 MB of
// upload (the bodies of POST, PATCH and PUT requests) per 5 minutes.
//
// A Client paces each mailbox's requests to stay inside its Budget, so that
// Graph rarely has to answer 429: a request waits for one of
// MaxConcurrentRequests slots, then for its share of two token buckets,
// one counting requests and one counting upload bytes. Each bucket refills
// at 99% of its limit, less its burst (1% of the limit), per window, so
// that any window holds at most 99% of the limit however the requests
// fall; the remaining 1% absorbs the difference between the time a request
// leaves and the time Graph counts it. A request larger than the burst (an
// upload body of several MB) is admitted once the bucket has refilled
// enough to pay for all of it. A $batch counts as one request per
// sub-request, and its envelope's bytes as upload.
//
// The budget is shared by every Mailbox of the Client with the same user
// (compared case-insensitively), not across Clients or processes: two
// processes writing the same mailbox with the same app registration share
// Microsoft's budget and should divide it between them.
//
// A zero field means that limit is not applied.
type Budget struct {
	// MaxConcurrentRequests is how many requests may be in flight at once
	// (4).
	MaxConcurrentRequests int
	// MaxRequestsPerWindow is how many requests may start per
	// RequestWindow (10,000).
	MaxRequestsPerWindow int
	// RequestWindow is the window of MaxRequestsPerWindow (10 minutes).
	RequestWindow time.Duration
	// MaxUploadBytesPerWindow is how many request body bytes of POST,
	// PATCH and PUT requests, before compression, may be sent per
	// UploadWindow (150 MB, counted as 150 MiB as Microsoft's limit pages
	// do not say).
	MaxUploadBytesPerWindow int64
	// UploadWindow is the window of MaxUploadBytesPerWindow (5 minutes).
	UploadWindow time.Duration
}

// DefaultBudget returns Exchange Online's documented per-app-per-mailbox
// limits: 4 concurrent requests, 10,000 requests per 10 minutes, 150 MB of
// upload per 5 minutes
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
func DefaultBudget() *Budget {
	return &Budget{
		MaxConcurrentRequests:   4,
		MaxRequestsPerWindow:    10000,
		RequestWindow:           10 * time.Minute,
		MaxUploadBytesPerWindow: 150 << 20,
		UploadWindow:            5 * time.Minute,
	}
}

// budgetHeadroom is the share of each windowed limit that the pacer allows
// itself.
const budgetHeadroom = 0.99
