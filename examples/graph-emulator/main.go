// Command graph-emulator runs the exchangetest Microsoft Graph mail
// emulator standalone, for trying a Graph client against it by hand.
//
//	go run ./examples/graph-emulator -addr 127.0.0.1:0 -user alice@contoso.com
//	go run ./examples/graph-emulator -budgets default -timescale 60
//	go run ./examples/graph-emulator -budgets concurrent=4,requests=100,upload=10485760
//
// -budgets enables Exchange Online's per-mailbox throttling ("default" is
// 4 concurrent, 10,000 requests per 10 minutes, 150 MB per 5 minutes; or
// name the limits, 0 or absent meaning not enforced); -timescale divides
// the 10- and 5-minute windows. It prints the base URL and a token hint,
// and stops on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
)

type userList []string

// String returns the users comma-separated (flag.Value).
func (u *userList) String() string { return strings.Join(*u, ",") }

// Set adds the comma-separated users of v (flag.Value).
func (u *userList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*u = append(*u, s)
		}
	}
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	token := flag.String("token", "", "the only bearer token accepted (empty: any non-empty token)")
	throttle := flag.Bool("throttle", false, "same as -budgets default")
	budgetsFlag := flag.String("budgets", "", `per-mailbox budgets: "default", or concurrent=N,requests=N,upload=BYTES`)
	timescale := flag.Float64("timescale", 1, "divide the budget windows (10 min, 5 min) by this factor")
	maxMessage := flag.Int64("max-message-bytes", 0, "maximum message size in bytes (0: 150 MB)")
	var users userList
	flag.Var(&users, "user", "mailbox to create (id or UPN); repeat or comma-separate")
	flag.Parse()
	if len(users) == 0 {
		users = userList{"alice@contoso.com"}
	}

	opts := &exchangetest.Options{Token: *token, TimeScale: *timescale, MaxMessageBytes: *maxMessage}
	if *throttle && *budgetsFlag == "" {
		*budgetsFlag = "default"
	}
	budget, err := parseBudget(*budgetsFlag)
	if err != nil {
		log.Fatalf("graph-emulator: -budgets: %v", err)
	}
	opts.Budget = budget
	// The emulator is an http.Handler; NewServer would pick its own port,
	// so serve the handler of an unstarted emulator on the chosen address.
	emu := exchangetest.NewServer(opts)
	defer emu.Close()
	for _, u := range users {
		emu.AddMailbox(u)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("graph-emulator: %v", err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String()
	fmt.Printf("Graph emulator listening on %s\n", url)
	fmt.Printf("  Graph base URLs: %s/v1.0  and  %s/beta\n", url, url)
	fmt.Printf("  mailboxes: %s\n", strings.Join(users, ", "))
	if b := emu.Budget(); b != nil {
		fmt.Printf("  budgets per mailbox: %d concurrent, %d requests per %v, %d bytes per %v\n",
			b.MaxConcurrentRequests, b.MaxRequestsPerWindow, scaled(exchangetest.RequestWindow, emu.TimeScale()),
			b.MaxUploadBytesPerWindow, scaled(exchangetest.UploadWindow, emu.TimeScale()))
	}
	if *token != "" {
		fmt.Printf("  token: send \"Authorization: Bearer %s\"\n", *token)
	} else {
		fmt.Printf("  token: any non-empty bearer token, e.g. \"Authorization: Bearer test\"\n")
	}
	fmt.Printf("  try: curl -H 'Authorization: Bearer test' %s/v1.0/users/%s/mailFolders\n", url, users[0])
	fmt.Println("Press Ctrl-C to stop.")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("graph-emulator: %v", err)
	}
	fmt.Println("stopped")
}

// parseBudget reads -budgets: "" (none), "default", or a comma-separated
// list of concurrent=N (Budget.MaxConcurrentRequests), requests=N
// (Budget.MaxRequestsPerWindow) and upload=BYTES
// (Budget.MaxUploadBytesPerWindow).
func parseBudget(v string) (*exchangetest.Budget, error) {
	switch strings.TrimSpace(v) {
	case "", "off", "none":
		return nil, nil
	case "default":
		return exchangetest.DefaultBudget(), nil
	}
	b := &exchangetest.Budget{}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		n, err := strconv.ParseInt(val, 10, 64)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not name=number", kv)
		}
		switch k {
		case "concurrent":
			b.MaxConcurrentRequests = int(n)
		case "requests":
			b.MaxRequestsPerWindow = int(n)
		case "upload":
			b.MaxUploadBytesPerWindow = n
		default:
			return nil, fmt.Errorf("unknown budget %q (concurrent, requests, upload)", k)
		}
	}
	return b, nil
}

func scaled(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) / scale)
}
