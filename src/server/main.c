/*
 * main.c - the chubd program: all of it lives in chubd_main() (chubd.c) so
 * that `chub serve` runs the same server.
 */
#include "chubd.h"

int main(int argc, char **argv) {
  return chubd_main(argc, argv);
}
