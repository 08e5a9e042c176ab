// MathJax 3 for the Markdown pages (pymdownx.arithmatex, generic mode: \( \) and \[ \] in
// elements of class "arithmatex") and for the notebooks' Markdown cells (mkdocs-jupyter leaves
// their $ ... $ and $$ ... $$ as written, in elements of class "jp-RenderedMarkdown").
// Everything else (code, API signatures, a shell's $VARIABLE) is left alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
  },
};

// Material's instant navigation swaps pages without reloading: typeset each new page.
document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
