// Command goclient is an integration team's first program against esaylov: it dials the
// server, checks health, and calls an esaylov.v1 RPC through stubs generated from Protos/.
//
//	goclient -addr 127.0.0.1:50051
//
// It prints one line per call and exits non-zero when the server does not answer as
// expected. The esaylov.v1 services are registered by the issues that implement them;
// until then a call gets UNIMPLEMENTED, which still proves the stubs and the wire agree.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	esaylovv1 "esaylov.uz/api/esaylov/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "server address")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fail("dial %s: %v", *addr, err)
	}
	defer conn.Close()

	health, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		fail("health: %v", err)
	}
	if health.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		fail("health: %v", health.GetStatus())
	}
	fmt.Println("health: SERVING")

	directory := esaylovv1.NewDirectoryServiceClient(conn)
	org, err := directory.GetOrganisation(ctx, &esaylovv1.GetOrganisationRequest{OrganisationId: "cec"})
	switch status.Code(err) {
	case codes.OK:
		fmt.Printf("directory: %s (%v)\n", org.GetNameEn(), org.GetKind())
	case codes.Unimplemented, codes.Unauthenticated, codes.NotFound:
		fmt.Printf("directory: %v\n", status.Code(err))
	default:
		fail("directory: %v", err)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "goclient: "+format+"\n", args...)
	os.Exit(1)
}
