# ipkg command-not-found hook for zsh. Load it from ~/.zshrc with:
#
#     eval "$(ipkg shell-init zsh)"
#
# When a command is missing, ipkg looks it up in its command index (no
# network). In an interactive shell it offers to install the package that
# provides it and then runs the command with its arguments; elsewhere it
# prints how to install it. A handler defined before this one (Debian's
# command-not-found, for one) still runs for commands no registry provides.
# See docs/command-not-found.md.

# `ipkg shell-init` replaces this line with ipkg's absolute path.
typeset -g __ipkg_bin=ipkg

if (( ! ${+__ipkg_cnf_loaded} )); then
    typeset -g __ipkg_cnf_loaded=1
    # Keep the handler we replace, under another name.
    if (( ${+functions[command_not_found_handler]} )); then
        functions[__ipkg_prev_command_not_found_handler]=$functions[command_not_found_handler]
    fi

    command_not_found_handler() {
        # Skipped when ipkg is gone; `__ipkg_in_cnf` stops any loop.
        if (( ! ${+__ipkg_in_cnf} )) && command -v "$__ipkg_bin" >/dev/null 2>&1; then
            local __ipkg_in_cnf=1 __ipkg_out __ipkg_st
            __ipkg_out=$("$__ipkg_bin" command-not-found --hook -- "$@")
            __ipkg_st=$?
            if (( __ipkg_st == 0 )) && [[ -n $__ipkg_out ]]; then
                # Installed: run it, and return its status.
                shift
                "$__ipkg_out" "$@"
                return
            elif (( __ipkg_st == 127 )); then
                # Suggested or declined: ipkg said so already.
                return 127
            fi
        fi
        if (( ${+functions[__ipkg_prev_command_not_found_handler]} )); then
            __ipkg_prev_command_not_found_handler "$@"
            return
        fi
        print -ru2 -- "zsh: command not found: $1"
        return 127
    }
fi
