# ipkg command-not-found hook for bash. Load it from ~/.bashrc with:
#
#     eval "$(ipkg shell-init bash)"
#
# When a command is missing, ipkg looks it up in its command index (no
# network). In an interactive shell it offers to install the package that
# provides it and then runs the command with its arguments; elsewhere it
# prints how to install it. A handler defined before this one (Debian's
# command-not-found, for one) still runs for commands no registry provides.
# See docs/command-not-found.md.

# `ipkg shell-init` replaces this line with ipkg's absolute path.
__ipkg_bin=ipkg

if [ -z "${__ipkg_cnf_loaded-}" ]; then
    __ipkg_cnf_loaded=1
    # Keep the handler we replace, under another name.
    if declare -F command_not_found_handle >/dev/null 2>&1; then
        eval "__ipkg_prev_$(declare -f command_not_found_handle)"
    fi

    command_not_found_handle() {
        # Skipped when ipkg is gone; `__ipkg_in_cnf` stops any loop.
        if [ -z "${__ipkg_in_cnf-}" ] && command -v "$__ipkg_bin" >/dev/null 2>&1; then
            local __ipkg_in_cnf=1 __ipkg_out __ipkg_st
            __ipkg_out=$("$__ipkg_bin" command-not-found --hook -- "$@")
            __ipkg_st=$?
            if [ "$__ipkg_st" -eq 0 ] && [ -n "$__ipkg_out" ]; then
                # Installed: run it, and return its status.
                shift
                "$__ipkg_out" "$@"
                return
            elif [ "$__ipkg_st" -eq 127 ]; then
                # Suggested or declined: ipkg said so already.
                return 127
            fi
        fi
        if declare -F __ipkg_prev_command_not_found_handle >/dev/null 2>&1; then
            __ipkg_prev_command_not_found_handle "$@"
            return
        fi
        printf 'bash: %s: command not found\n' "$1" >&2
        return 127
    }
fi
