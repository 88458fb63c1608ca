#!/usr/bin/env bash
# Installs the Debian packages vectord builds and tests with. Idempotent:
# asks apt only for what is missing, and runs `apt-get update` only then.
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config git
      libjansson-dev libcmocka-dev
      librdkafka-dev libmsgpack-dev libcurl4-openssl-dev libhiredis-dev libmicrohttpd-dev
      python3)
# deploy_systemd_verify runs systemd-analyze; deploy_deb_package cpack and dpkg-shlibdeps.
pkgs+=(systemd dpkg-dev)
[[ "${VD_WITH_FUZZ:-0}" = 1 ]] && pkgs+=(clang libclang-rt-14-dev)
# The directory's tests run a real redis-server (deploy/redis/redis.sh).
pkgs+=(redis-server redis-tools)
# The integration tests run a real Kafka broker from Maven Central jars.
command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || pkgs+=(maven)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup-deps: all packages present"
fi
