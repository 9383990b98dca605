# raised in a container. Configuration comes from RAISE_* environment variables
# (RAISE_DATABASE_URL, RAISE_LISTEN, RAISE_TLS_CERT, RAISE_TLS_KEY, ...); the image
# carries an empty /etc/raise/raised.conf so the default command needs no file.
#   docker build -t raise .
#   docker run raise migrate --config /etc/raise/raised.conf

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      libevent-dev libjson-c-dev libssl-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
 && cmake --build build -j"$(nproc)" --target raised \
 && bin=build/server/raised && { [ -x "$bin" ] || bin=build/raised; } \
 && install -D -m 0755 "$bin" /out/raised

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 \
      libjson-c5 libssl3 libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin raise \
 && install -d -m 0755 /etc/raise \
 && : >/etc/raise/raised.conf
COPY --from=build /out/raised /usr/local/bin/raised
USER raise
EXPOSE 8443
ENTRYPOINT ["raised"]
CMD ["--config", "/etc/raise/raised.conf"]
