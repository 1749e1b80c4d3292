# ipkg command-not-found hook for fish. Load it from
# ~/.config/fish/config.fish with:
#
#     ipkg shell-init fish | source
#
# When a command is missing, ipkg looks it up in its command index (no
# network). In an interactive shell it offers to install the package that
# provides it and then runs the command with its arguments; elsewhere it
# prints how to install it. A handler defined before this one still runs for
# commands no registry provides. fish sets $status to 127 after any missing
# command, so the status of a command run from here does not reach $status.
# See docs/command-not-found.md.

# `ipkg shell-init` replaces this line with ipkg's absolute path.
set -g __ipkg_bin ipkg

if not set -q __ipkg_cnf_loaded
    set -g __ipkg_cnf_loaded 1
    # Keep the handler we replace, under another name.
    if functions -q fish_command_not_found
        functions -c fish_command_not_found __ipkg_prev_fish_command_not_found
    end

    function fish_command_not_found
        # Skipped when ipkg is gone; `__ipkg_in_cnf` stops any loop.
        if not set -q __ipkg_in_cnf; and command -q $__ipkg_bin
            set -g __ipkg_in_cnf 1
            set -l out ($__ipkg_bin command-not-found --hook -- $argv)
            set -l st $status
            set -e __ipkg_in_cnf
            if test $st -eq 0; and test -n "$out[1]"
                # Installed: run it with its arguments.
                $out[1] $argv[2..-1]
                return $status
            else if test $st -eq 127
                # Suggested or declined: ipkg said so already.
                return 127
            end
        end
        if functions -q __ipkg_prev_fish_command_not_found
            __ipkg_prev_fish_command_not_found $argv
        else
            __fish_default_command_not_found_handler $argv
        end
    end
end
