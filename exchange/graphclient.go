package exchange

import (
	"sync"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
)

// graphSetup runs msgraph-sdk-go's process-wide set-up once.
var graphSetup sync.Once

// newGraphClient returns a Graph client over adapter (whose base URL is
// set). msgraphsdk.NewGraphServiceClient registers the default
// serializers and sets kiota's process-wide backing store factory
// (store.BackingStoreFactoryInstance) each time it is called, while every
// model that any client decodes reads that variable: creating a Client
// while another one is working is a data race (the race detector reports
// it). So the SDK's constructor runs once per process; later Clients get
// the same client structure, and their adapter the backing-store
// wrappers, without touching the process-wide variables.
func newGraphClient(adapter *msgraphsdk.GraphRequestAdapter) *msgraphsdk.GraphServiceClient {
	var first *msgraphsdk.GraphServiceClient
	graphSetup.Do(func() { first = msgraphsdk.NewGraphServiceClient(adapter) })
	if first != nil {
		return first
	}
	adapter.EnableBackingStore(nil) // nil: the process-wide factory is left as it is
	base := abstractions.NewBaseRequestBuilder(adapter, "{+baseurl}", map[string]string{"baseurl": adapter.GetBaseUrl()})
	return &msgraphsdk.GraphServiceClient{GraphBaseServiceClient: msgraphsdk.GraphBaseServiceClient{BaseRequestBuilder: *base}}
}
