/** Hooks for a session with no policy: everything allowed, nothing masked. */
export const ALLOW_ALL_HOOKS = {
    masksResults: false,
    onQuery: () => ({ action: 'allow', rule: null, reason: 'no policy on this connection' }),
    onParse: () => ({ action: 'allow', rule: null, reason: 'no policy on this connection' }),
    onRowDescription: () => null,
    onDataRow: (m, v) => m.maskRow(v),
    onCopyOut: () => null,
    onCopyData: (m, l) => m.maskCopyLine(l),
};
//# sourceMappingURL=session-hooks.js.map