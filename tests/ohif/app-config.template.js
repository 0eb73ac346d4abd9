/** OHIF configuration for the end-to-end test (docs/ohif.md explains each data-source key).
 * run.sh replaces __DICOMWEB_ROOT__ with the server's URL, e.g. http://127.0.0.1:5000/dicomweb.
 * Everything points at loopback: no demo servers, no analytics, no remote customizations. */
window.config = {
  name: 'dicomwebserver-e2e',
  routerBasename: null,
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  // The test machine renders without a GPU and without cross-origin isolation; these notices
  // would only cover the viewport.
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  investigationalUseDialog: { option: 'never' },
  maxNumberOfWebWorkers: 2,
  maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 10 },
  showErrorDetails: 'always',
  defaultDataSourceName: 'dicomwebserver',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicomwebserver',
      configuration: {
        friendlyName: 'dicomwebserver',
        name: 'dicomwebserver',
        qidoRoot: '__DICOMWEB_ROOT__',
        wadoRoot: '__DICOMWEB_ROOT__',
        wadoUriRoot: '__DICOMWEB_ROOT__',
        qidoSupportsIncludeField: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        staticWado: false,
        singlepart: false,
        omitQuotationForMultipartRequest: true,
        bulkDataURI: { enabled: true },
        dicomUploadEnabled: true,
      },
    },
  ],
};
