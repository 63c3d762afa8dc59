"""gRPC clients of the engine, sync and broker services behind the ports of recon_svc.ports."""
