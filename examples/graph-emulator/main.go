// Command graph-emulator runs the exchangetest Microsoft Graph mail
// emulator standalone, for trying a Graph client against it by hand.
//
//	go run ./examples/graph-emulator -addr 127.0.0.1:0 -user alice@contoso.com
//
// It prints the base URL and a token hint, and stops on Ctrl-C.
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
	"strings"
	"syscall"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
)

type userList []string

func (u *userList) String() string { return strings.Join(*u, ",") }
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
	throttle := flag.Bool("throttle", false, "enforce Exchange Online's per-mailbox budgets")
	var users userList
	flag.Var(&users, "user", "mailbox to create (id or UPN); repeat or comma-separate")
	flag.Parse()
	if len(users) == 0 {
		users = userList{"alice@contoso.com"}
	}

	opts := &exchangetest.Options{Token: *token}
	if *throttle {
		opts.Budgets = exchangetest.DefaultBudgets()
	}
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
