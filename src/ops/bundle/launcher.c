/*
 * The launcher `ipkg bundle` writes as each command of a bundled package.
 *
 * <pkg>/bin/NAME runs
 *   <pkg>/IPKG_LOADER --inhibit-cache --library-path <pkg>/lib [--argv0 ARGV0] <pkg>/libexec/NAME ARGS...
 * so the program is loaded by the bundled loader from the bundled libraries
 * and nothing of the host's /lib or /usr is read. It is linked statically:
 * it must run where there is no libc (or no /bin/sh) outside the package.
 *
 * <pkg> is found from the launcher's own path, /proc/self/exe, which the
 * kernel gives with every symlink resolved (the bin-dir link, the
 * <prefix>/<name> link), so the package can live anywhere. Without /proc,
 * argv[0] is resolved instead when it names a path.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef IPKG_LOADER
#error "build with -DIPKG_LOADER='\"lib/ld-linux-x86-64.so.2\"'"
#endif

static int join(char *out, const char *root, const char *rest, const char *name) {
    int n = snprintf(out, PATH_MAX, "%s/%s%s", root, rest, name);
    return n > 0 && n < PATH_MAX;
}

int main(int argc, char **argv) {
    static char self[PATH_MAX], loader[PATH_MAX], libdir[PATH_MAX], prog[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
    } else if (argc < 1 || !strchr(argv[0], '/') || !realpath(argv[0], self)) {
        fputs("ipkg launcher: cannot find the package: /proc is not mounted\n", stderr);
        return 127;
    }
    char *slash = strrchr(self, '/');
    if (!slash) return 127;
    *slash = '\0';
    const char *name = slash + 1;
    slash = strrchr(self, '/'); /* self is now <pkg>/bin */
    if (!slash) return 127;
    *slash = '\0';
    const char *root = self[0] ? self : "/";
    if (!join(loader, root, IPKG_LOADER, "") || !join(libdir, root, "lib", "") ||
        !join(prog, root, "libexec/", name)) {
        fputs("ipkg launcher: package path too long\n", stderr);
        return 127;
    }
    char **args = calloc((size_t)argc + 8, sizeof *args);
    if (!args) return 127;
    int i = 0;
    args[i++] = loader;
    args[i++] = "--inhibit-cache";
    args[i++] = "--library-path";
    args[i++] = libdir;
#ifdef IPKG_ARGV0
    args[i++] = "--argv0";
    args[i++] = argc > 0 ? argv[0] : prog;
#endif
    args[i++] = prog;
    for (int a = 1; a < argc; a++) args[i++] = argv[a];
    args[i] = NULL;
    execv(loader, args);
    fprintf(stderr, "ipkg launcher: cannot run %s: ", loader);
    perror(NULL);
    return 127;
}
