module slipway.local/soak

go 1.23
